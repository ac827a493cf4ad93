-- Articles, their polls and ratings, and the readers' votes.
-- Invariants live here as well as in the code: a star is 1..5, one vote per
-- reader per poll, one rating per reader per article, and the tallies that
-- pages read are kept by triggers in the same transaction as the rows they count.

create table articles (
    id            integer primary key,
    slug          text not null unique,
    lang          text not null,
    title         text not null,
    translation   text,
    author_name   text not null,
    author_bio    text not null,
    published_at  text,
    image_src     text,
    image_alt     text,
    image_credit  text,
    body_markdown text not null,
    source_path   text not null,
    imported_at   text not null
) strict;

create table polls (
    id         text primary key,
    article_id integer not null unique references articles (id) on delete cascade,
    question   text not null,
    status     text not null check (status in ('open', 'closed')),
    closes_at  text
) strict;

create table poll_options (
    poll_id    text not null references polls (id) on delete cascade,
    option_id  integer not null check (option_id > 0),
    position   integer not null,
    label      text not null,
    -- the historical tally imported from the content file
    seed_votes integer not null default 0 check (seed_votes >= 0),
    -- votes cast here, kept by the votes_count trigger
    cast_votes integer not null default 0 check (cast_votes >= 0),
    primary key (poll_id, option_id)
) strict;

create table votes (
    id           integer primary key,
    poll_id      text not null,
    option_id    integer not null,
    voter        text not null,
    address_hash blob,
    cast_at      integer not null, -- unix milliseconds
    unique (poll_id, voter),
    foreign key (poll_id, option_id) references poll_options (poll_id, option_id)
) strict;

create index votes_by_address on votes (poll_id, address_hash, cast_at);

create trigger votes_count after insert on votes
begin
    update poll_options set cast_votes = cast_votes + 1
     where poll_id = new.poll_id and option_id = new.option_id;
end;

create table ratings (
    article_id integer not null references articles (id) on delete cascade,
    voter      text not null,
    stars      integer not null check (stars between 1 and 5),
    rated_at   integer not null, -- unix milliseconds
    primary key (article_id, voter)
) strict;

-- How many readers gave each article each number of stars.
create table rating_counts (
    article_id integer not null references articles (id) on delete cascade,
    stars      integer not null check (stars between 1 and 5),
    readers    integer not null default 0 check (readers >= 0),
    primary key (article_id, stars)
) strict;

create trigger ratings_count_insert after insert on ratings
begin
    insert into rating_counts (article_id, stars, readers) values (new.article_id, new.stars, 1)
        on conflict (article_id, stars) do update set readers = readers + 1;
end;

create trigger ratings_count_update after update of stars on ratings
when old.stars <> new.stars
begin
    update rating_counts set readers = readers - 1
     where article_id = old.article_id and stars = old.stars;
    insert into rating_counts (article_id, stars, readers) values (new.article_id, new.stars, 1)
        on conflict (article_id, stars) do update set readers = readers + 1;
end;

-- The site's name and footer links, from content/site.toml.
create table site (
    id           integer primary key check (id = 1),
    name         text not null,
    footer_links text not null -- JSON: [{"label", "href", "lang"}]
) strict;

-- The server's secret, made once: it signs reader cookies and keys address hashes.
create table server_secret (
    id     integer primary key check (id = 1),
    secret blob not null
) strict;
