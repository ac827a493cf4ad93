// Tribune: small enhancements over plain forms and links, which work without it.
(() => {
  'use strict';
  const d = document;
  const $ = (s, r = d) => r.querySelector(s);
  const $$ = (s, r = d) => [...r.querySelectorAll(s)];
  const make = (tag, cls, text = '') => Object.assign(d.createElement(tag), { className: cls, textContent: text });
  const reveal = (el) => { const box = el.closest('.js-only'); if (box) box.hidden = false; };
  const parse = (t) => { try { return JSON.parse(t); } catch { return null; } };

  const status = $('[data-announce]');
  const announce = (text) => {
    if (!status) return;
    status.textContent = ''; // a change of text is what a screen reader hears
    setTimeout(() => { status.textContent = text; }, 100);
  };

  // Counts in the page's language; the words come from the server (data-forms).
  const rules = new Intl.PluralRules(d.documentElement.lang || undefined);
  const formsOf = (el) => parse(el.dataset.forms) || { one: 'vote', few: 'votes', many: 'votes', none: '(no votes)' };
  const votes = (f, n) => {
    const c = rules.select(n);
    return `${n} ${f[c === 'one' || c === 'few' ? c : 'many']}`;
  };
  // One decimal, ties to even, as the server's Rust formatting does.
  const oneDecimal = (x) => {
    const t = x * 10, f = Math.floor(t);
    return ((t - f === 0.5 ? f + (f % 2) : Math.round(t)) / 10).toFixed(1);
  };

  // fetch as {res, data}; throws only when the network fails.
  const api = async (method, url, body, key) => {
    const headers = { 'content-type': 'application/json', accept: 'application/json' };
    if (key) headers['idempotency-key'] = key;
    const res = await fetch(url, {
      method, credentials: 'same-origin', body: body && JSON.stringify(body), headers,
    });
    return { res, data: parse(await res.text()) };
  };
  // A vote or rating: sent with a fresh idempotency key and, when the network
  // fails, sent once more with the same key, so that if the first got through
  // the server answers it again instead of counting it twice. Throws when
  // both fail.
  const freshKey = () => {
    if (crypto.randomUUID) return crypto.randomUUID(); // secure contexts only
    return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, '0')).join('');
  };
  const write = async (method, url, body) => {
    const key = freshKey();
    try {
      return await api(method, url, body, key);
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 500));
      return api(method, url, body, key);
    }
  };
  const problem = ({ res, data }) => (data && (data.detail || data.title)) || `${res.status} ${res.statusText}`;
  const showError = (box, text) => {
    const p = $('.form-error', box) || box.appendChild(make('p', 'form-error'));
    p.setAttribute('role', 'alert');
    p.textContent = text;
  };
  const clearError = (box) => $('.form-error', box)?.remove();

  // Share: copy the link; the system's share sheet where there is one; print.
  for (const b of $$('[data-copy-link]')) {
    if (!navigator.clipboard) continue;
    reveal(b);
    const label = b.textContent;
    let timer;
    b.addEventListener('click', () => navigator.clipboard.writeText(b.dataset.copyLink).then(() => {
      b.textContent = b.dataset.copied;
      announce(b.dataset.copied);
      clearTimeout(timer);
      timer = setTimeout(() => { b.textContent = label; }, 2500);
    }, () => {}));
  }
  if (typeof navigator.share === 'function') {
    for (const b of $$('[data-share-url]')) {
      reveal(b);
      b.addEventListener('click', () => navigator.share({ title: b.dataset.shareTitle, url: b.dataset.shareUrl }).catch(() => {}));
    }
  }
  for (const b of $$('[data-print]')) {
    reveal(b);
    b.addEventListener('click', () => print());
  }

  // Poll: vote in place; the results as the server renders them for a voter.
  const box = $('section[data-poll]');
  const poll = box && (() => {
    const id = box.dataset.poll;
    const url = `/api/v1/polls/${encodeURIComponent(id)}`;
    const forms = formsOf(box);
    let form = $('form[data-poll-form]', box);
    let busy = false;

    const update = (state) => {
      for (const o of state.options) {
        const li = $(`.poll-option[data-option="${Number(o.id)}"]`, box);
        if (!li) continue;
        const pct = Math.max(0, Math.min(100, Math.round(o.percent)));
        const fill = $('.poll-fill', li);
        fill.className = `poll-fill w${pct}`;
        fill.dataset.percent = pct;
        $('[data-result]', li).textContent = `${o.votes} (${o.percent}%)`;
      }
      $('[data-poll-total]', box).textContent = votes(forms, state.total_votes);
    };

    const showResults = (state, focus) => {
      const q = make('p', 'poll-question', state.question);
      q.tabIndex = -1;
      const list = make('ol', 'poll-options poll-results');
      for (const o of state.options) {
        const chosen = o.id === state.your_vote;
        const li = make('li', chosen ? 'poll-option chosen' : 'poll-option');
        li.dataset.option = o.id;
        const label = make('span', 'poll-label', o.label);
        if (chosen) label.append(' ', make('strong', 'your-vote', `(${box.dataset.yourVote})`));
        const bar = make('span', 'poll-bar');
        bar.setAttribute('aria-hidden', 'true');
        bar.append(make('span', 'poll-fill'));
        const result = make('span', 'poll-result');
        result.dataset.result = '';
        li.append(label, bar, result);
        list.append(li);
      }
      const nodes = [q, list];
      if (state.status === 'closed') nodes.push(make('p', 'poll-status', box.dataset.closed));
      form.replaceWith(...nodes);
      form = null;
      update(state);
      if (focus) q.focus();
    };

    form?.addEventListener('submit', async (e) => {
      const choice = $('input[name="option"]:checked', form);
      if (!choice) return; // the browser's `required` check speaks
      e.preventDefault();
      if (busy) return;
      busy = true;
      const button = $('button', form);
      button.disabled = true;
      clearError(box);
      let answer;
      try {
        answer = await write('POST', `${url}/votes`, { option: Number(choice.value) });
      } catch {
        form.submit(); // no network twice: the plain form may still get through
        return;
      }
      // Already voted (say, in another tab), or closed meanwhile: show where
      // things stand, and say why this choice was not counted.
      const refused = answer.res.status === 409 ? problem(answer) : null;
      if (refused) answer = await api('GET', url).catch(() => answer);
      busy = false;
      if (answer.res.ok && Array.isArray(answer.data?.options)) {
        showResults(answer.data, true);
        if (refused) box.appendChild(make('p', 'poll-status', refused));
        return;
      }
      button.disabled = false;
      showError(form, problem(answer));
    });

    // A broadcast moves the counts; the reader's own mark stays.
    return (state) => {
      if (state?.id !== id || !Array.isArray(state.options)) return;
      if (form && !busy && state.status === 'closed') showResults({ ...state, your_vote: null });
      else update(state);
    };
  })();

  // Rating: each change of star is sent at once; both widgets agree.
  const slug = $('[data-article]')?.dataset.article;
  const ratingForms = $$('form[data-rating]');
  const rating = slug && ratingForms.length > 0 && (() => {
    const forms = formsOf(ratingForms[0]);
    const url = `/api/v1/articles/${encodeURIComponent(slug)}/rating`;

    const show = (state, mine) => {
      const avg = typeof state.average === 'number' ? state.average : null;
      const half = avg === null ? 0 : Math.round(avg * 2) / 2; // as the server lights them
      for (const f of ratingForms) {
        const average = $('[data-rating-average]', f);
        average.textContent = avg === null ? '' : oneDecimal(avg);
        average.parentElement.hidden = avg === null;
        $('[data-rating-count]', f).textContent = state.count > 0 ? `(${votes(forms, state.count)})` : forms.none;
        for (const input of $$('.star-input', f)) {
          const v = Number(input.value);
          input.nextElementSibling.classList.toggle('lit', v <= half);
          input.nextElementSibling.classList.toggle('half', v - 0.5 === half);
          if (mine) input.checked = v === state.your_rating;
        }
        const yours = $('[data-rating-yours]', f);
        if (mine && state.your_rating) {
          $('[data-rating-yours-value]', yours).textContent = state.your_rating;
          yours.hidden = false;
        }
      }
    };

    // One request at a time, the newest choice last, so the server keeps the last one.
    let pending = null, sending = false, timer;
    const send = async () => {
      sending = true;
      while (pending) {
        const { stars, form } = pending;
        pending = null;
        let answer;
        try {
          answer = await write('PUT', url, { stars });
        } catch {
          sending = false;
          return form.submit();
        }
        if (!answer.res.ok || !answer.data) showError($('fieldset', form), problem(answer));
        else if (!pending) {
          show(answer.data, true);
          announce($('[data-rating-yours]', form).textContent.replace(/\s+/g, ' ').trim());
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
      // A short pause, so running along the stars with arrow keys sends one rating.
      timer = setTimeout(() => sending || send(), 250);
    };
    for (const f of ratingForms) {
      f.addEventListener('change', (e) => {
        if (e.target.matches('.star-input')) choose(Number(e.target.value), f);
      });
      f.addEventListener('submit', (e) => {
        e.preventDefault();
        const checked = $('.star-input:checked', f);
        if (checked) choose(Number(checked.value), f);
      });
    }
    return (state) => { if (state && state.article === slug) show(state, false); };
  })();

  // Live: counts move as other readers vote; the stream opens after the page
  // has loaded. When there is no stream (the server turned it away because
  // too many readers are live, or the browser has none), the results are
  // re-read every few seconds instead, while the page is in view, and the
  // stream is tried again now and then.
  if (slug && (poll || rating)) {
    const sources = [
      [box && `/api/v1/polls/${encodeURIComponent(box.dataset.poll)}`, poll],
      [`/api/v1/articles/${encodeURIComponent(slug)}/rating`, rating],
    ].filter(([url, apply]) => url && apply);
    let source = null, timer = null, retryAt = 0;
    const reread = () => {
      if (d.visibilityState !== 'visible') return;
      for (const [url, apply] of sources) {
        api('GET', url).then(({ res, data }) => res.ok && apply(data), () => {});
      }
    };
    const fallBack = () => {
      retryAt = Date.now() + 60000;
      if (timer) return;
      reread();
      timer = setInterval(() => {
        reread();
        if (Date.now() >= retryAt) open();
      }, 5000);
    };
    const open = () => {
      if (!window.EventSource) return fallBack();
      if (source && source.readyState !== EventSource.CLOSED) return;
      source = new EventSource(`/api/v1/articles/${encodeURIComponent(slug)}/events`);
      source.addEventListener('open', () => { clearInterval(timer); timer = null; });
      source.addEventListener('poll', (e) => poll && poll(parse(e.data)));
      source.addEventListener('rating', (e) => rating && rating(parse(e.data)));
      // A refusal closes the stream for good; a dropped connection is retried by the browser.
      source.addEventListener('error', () => { if (source?.readyState === EventSource.CLOSED) fallBack(); });
    };
    if (d.readyState === 'complete') setTimeout(open);
    else addEventListener('load', () => setTimeout(open), { once: true });
    d.addEventListener('visibilitychange', () => { if (timer) reread(); });
    addEventListener('pagehide', () => { source?.close(); source = null; clearInterval(timer); timer = null; });
    addEventListener('pageshow', (e) => { if (e.persisted) open(); });
  }
})();
