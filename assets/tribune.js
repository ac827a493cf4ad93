// Tribune: small enhancements over plain forms and links. Without this file
// every action still works: the forms post, the links link.
(() => {
  'use strict';
  const d = document;
  const $ = (sel, root = d) => root.querySelector(sel);
  const $$ = (sel, root = d) => [...root.querySelectorAll(sel)];
  const make = (tag, cls, text) => {
    const el = d.createElement(tag);
    if (cls) el.className = cls;
    if (text != null) el.textContent = text;
    return el;
  };
  const reveal = (el) => { const box = el.closest('.js-only'); if (box) box.hidden = false; };

  const status = $('[data-announce]');
  const announce = (text) => {
    if (!status) return;
    status.textContent = '';
    setTimeout(() => { status.textContent = text; }, 100);
  };

  // Counts in the page's language: the words come from the server (data-forms).
  const rules = new Intl.PluralRules(d.documentElement.lang || undefined);
  const formsOf = (el) => {
    try { return JSON.parse(el.dataset.forms); } catch { return { one: 'vote', few: 'votes', many: 'votes', none: '(no votes)' }; }
  };
  const votes = (forms, n) => {
    const c = rules.select(n);
    return `${n} ${forms[c === 'one' || c === 'few' ? c : 'many']}`;
  };
  const votesInParens = (forms, n) => (n > 0 ? `(${votes(forms, n)})` : forms.none);
  // One decimal, ties to even, as the server's Rust formatting does.
  const oneDecimal = (x) => {
    const t = x * 10, f = Math.floor(t);
    const n = t - f === 0.5 ? (f % 2 ? f + 1 : f) : Math.round(t);
    return (n / 10).toFixed(1);
  };
  const parse = (text) => { try { return JSON.parse(text); } catch { return null; } };

  // fetch that resolves to {res, data}; rejects only on a network failure.
  const api = async (method, url, body) => {
    const init = { method, credentials: 'same-origin', headers: { accept: 'application/json' } };
    if (body) {
      init.headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const res = await fetch(url, init);
    const data = parse(await res.text());
    return { res, data };
  };
  const problem = ({ res, data }) => (data && (data.detail || data.title)) || `${res.status} ${res.statusText}`.trim();
  const showError = (box, text) => {
    let p = $('.form-error', box);
    if (!p) {
      p = make('p', 'form-error');
      p.setAttribute('role', 'alert');
      box.append(p);
    }
    p.textContent = text;
  };
  const clearError = (box) => { $('.form-error', box)?.remove(); };

  // Share: copy the link, or the system's share sheet where there is one.
  for (const btn of $$('[data-copy-link]')) {
    if (!navigator.clipboard) continue;
    reveal(btn);
    const text = btn.textContent;
    let timer;
    btn.addEventListener('click', async () => {
      try {
        await navigator.clipboard.writeText(btn.dataset.copyLink);
      } catch {
        return;
      }
      btn.textContent = btn.dataset.copied;
      announce(btn.dataset.copied);
      clearTimeout(timer);
      timer = setTimeout(() => { btn.textContent = text; }, 2500);
    });
  }
  if (typeof navigator.share === 'function') {
    for (const btn of $$('[data-share-url]')) {
      reveal(btn);
      btn.addEventListener('click', () => {
        navigator.share({ title: btn.dataset.shareTitle, url: btn.dataset.shareUrl }).catch(() => {});
      });
    }
  }
  for (const btn of $$('[data-print]')) {
    reveal(btn);
    btn.addEventListener('click', () => window.print());
  }

  // Poll: vote without leaving the page; results as the server renders them.
  const pollBox = $('section[data-poll]');
  const poll = pollBox && (() => {
    const id = pollBox.dataset.poll;
    const url = `/api/v1/polls/${encodeURIComponent(id)}`;
    const forms = formsOf(pollBox);
    const total = $('[data-poll-total]', pollBox);
    let form = $('form[data-poll-form]', pollBox);
    let busy = false;

    const update = (state) => {
      for (const o of state.options || []) {
        const li = $(`.poll-option[data-option="${Number(o.id)}"]`, pollBox);
        if (!li) continue;
        const pct = Math.max(0, Math.min(100, Math.round(o.percent)));
        const fill = $('.poll-fill', li);
        if (fill) {
          fill.className = `poll-fill w${pct}`;
          fill.dataset.percent = pct;
        }
        const result = $('[data-result]', li);
        if (result) result.textContent = `${o.votes} (${o.percent}%)`;
      }
      if (total) total.textContent = votes(forms, state.total_votes);
    };

    const showResults = (state, focus) => {
      if (!form) return update(state);
      const question = make('p', 'poll-question', state.question);
      question.tabIndex = -1;
      const list = make('ol', 'poll-options poll-results');
      for (const o of state.options) {
        const chosen = o.id === state.your_vote;
        const li = make('li', chosen ? 'poll-option chosen' : 'poll-option');
        li.dataset.option = o.id;
        const label = make('span', 'poll-label', o.label);
        if (chosen) label.append(' ', make('strong', 'your-vote', `(${pollBox.dataset.yourVote})`));
        const bar = make('span', 'poll-bar');
        bar.setAttribute('aria-hidden', 'true');
        bar.append(make('span', 'poll-fill'));
        const result = make('span', 'poll-result');
        result.dataset.result = '';
        li.append(label, bar, result);
        list.append(li);
      }
      const nodes = [question, list];
      if (state.status === 'closed') nodes.push(make('p', 'poll-status', pollBox.dataset.closed));
      form.replaceWith(...nodes);
      form = null;
      update(state);
      if (focus) question.focus();
    };

    form?.addEventListener('submit', async (event) => {
      const choice = $('input[name="option"]:checked', form);
      if (!choice) return; // the browser's `required` check speaks
      event.preventDefault();
      if (busy) return;
      busy = true;
      const button = $('button[type="submit"]', form);
      if (button) button.disabled = true;
      clearError(pollBox);
      let answer;
      try {
        answer = await api('POST', `${url}/votes`, { option: Number(choice.value) });
      } catch {
        busy = false;
        form.submit(); // no network for fetch: let the plain form try
        return;
      }
      try {
        if (answer.res.status === 409) answer = await api('GET', url);
      } catch {
        answer = { res: { status: 0, statusText: '' }, data: null };
      }
      busy = false;
      if (answer.res.ok && answer.data && Array.isArray(answer.data.options)) {
        showResults(answer.data, true);
        return;
      }
      if (button) button.disabled = false;
      showError(form, problem(answer));
    });

    return {
      // A broadcast state: counts move; the reader's own mark stays as it is.
      live(state) {
        if (!state || state.id !== id || !Array.isArray(state.options)) return;
        if (form && !busy && state.status === 'closed') showResults({ ...state, your_vote: null }, false);
        else update(state);
      },
    };
  })();

  // Rating: every change of star is sent at once; both widgets agree.
  const article = $('[data-article]');
  const slug = article && article.dataset.article;
  const ratingForms = $$('form[data-rating]');
  const rating = slug && ratingForms.length > 0 && (() => {
    const forms = formsOf(ratingForms[0]);
    const url = `/api/v1/articles/${encodeURIComponent(slug)}/rating`;

    const show = (state, mine) => {
      const avg = typeof state.average === 'number' ? state.average : null;
      const rounded = avg === null ? 0 : Math.round(avg * 2) / 2;
      for (const f of ratingForms) {
        const average = $('[data-rating-average]', f);
        if (average) {
          average.textContent = avg === null ? '' : oneDecimal(avg);
          average.closest('.rating-average').hidden = avg === null;
        }
        const count = $('[data-rating-count]', f);
        if (count) count.textContent = votesInParens(forms, state.count || 0);
        for (const input of $$('.star-input', f)) {
          const value = Number(input.value);
          const star = input.nextElementSibling;
          star.classList.toggle('lit', value <= rounded);
          star.classList.toggle('half', value - 0.5 === rounded);
          if (mine) input.checked = value === state.your_rating;
        }
        const yours = $('[data-rating-yours]', f);
        if (mine && yours && state.your_rating) {
          $('[data-rating-yours-value]', yours).textContent = state.your_rating;
          yours.hidden = false;
        }
      }
    };

    let pending = null;
    let sending = false;
    let timer;
    const send = async () => {
      sending = true;
      while (pending) {
        const { stars, form } = pending;
        pending = null;
        let answer;
        try {
          answer = await api('PUT', url, { stars });
        } catch {
          sending = false;
          form.submit();
          return;
        }
        if (answer.res.ok && answer.data) {
          if (!pending) {
            show(answer.data, true);
            const yours = $('[data-rating-yours]', form);
            if (yours) announce(yours.textContent.replace(/\s+/g, ' ').trim());
          }
        } else {
          showError($('fieldset', form) || form, problem(answer));
        }
      }
      sending = false;
    };
    const choose = (stars, form) => {
      for (const f of ratingForms) {
        clearError(f);
        const same = $(`.star-input[value="${stars}"]`, f);
        if (same) same.checked = true;
      }
      pending = { stars, form };
      clearTimeout(timer);
      // A short pause, so running along the stars with the arrow keys sends one rating.
      timer = setTimeout(() => { if (!sending) send(); }, 250);
    };

    for (const f of ratingForms) {
      f.addEventListener('change', (event) => {
        const input = event.target;
        if (input.matches('.star-input')) choose(Number(input.value), f);
      });
      f.addEventListener('submit', (event) => {
        event.preventDefault();
        const checked = $('.star-input:checked', f);
        if (checked) choose(Number(checked.value), f);
      });
    }
    return { live(state) { if (state && (!state.article || state.article === slug)) show(state, false); } };
  })();

  // Live: the poll and the rating move as other readers vote.
  if (slug && typeof EventSource === 'function') {
    let source = null;
    const open = () => {
      if (source) return;
      source = new EventSource(`/api/v1/articles/${encodeURIComponent(slug)}/events`);
      source.addEventListener('poll', (e) => poll && poll.live(parse(e.data)));
      source.addEventListener('rating', (e) => rating && rating.live(parse(e.data)));
    };
    const close = () => { source?.close(); source = null; };
    // After the page has loaded, so the stream never delays it.
    if (d.readyState === 'complete') setTimeout(open, 0);
    else addEventListener('load', () => setTimeout(open, 0), { once: true });
    addEventListener('pagehide', close);
    addEventListener('pageshow', (e) => { if (e.persisted) open(); });
  }
})();
