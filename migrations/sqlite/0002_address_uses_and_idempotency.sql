-- Addresses kept only as long as the per-address caps need them; the answers
-- to writes sent with an Idempotency-Key; a row the writer rewrites to learn
-- whether it can write again after a fault.

-- One row per vote or rating change, under the keyed hash of the address it
-- came from (see `reader::Keys::hash_address`): what the per-address caps
-- count. The server erases rows older than the caps' window (an hour), so the
-- database says nothing lasting about who voted.
create table address_uses (
    scope        text not null,    -- 'poll:<poll id>' or 'rating:<article id>'
    address_hash blob not null,
    used_at      integer not null  -- unix milliseconds
) strict;

create index address_uses_by_address on address_uses (scope, address_hash, used_at);
create index address_uses_by_age on address_uses (used_at);

-- Votes of the last hour keep counting against their address; from now on no
-- vote keeps an address, and the ones kept so far are erased.
insert into address_uses (scope, address_hash, used_at)
select 'poll:' || poll_id, address_hash, cast_at
  from votes
 where address_hash is not null and cast_at > (unixepoch() - 3600) * 1000;

update votes set address_hash = null where address_hash is not null;

drop index votes_by_address;

-- The first answer to a vote or rating sent with an Idempotency-Key, kept for
-- 24 hours so that a retry gets it again instead of counting twice. `id` is a
-- keyed hash of the key and of whose it is (the reader, or, for a reader
-- without a cookie yet, their address); neither the key nor the address is kept.
create table idempotency_keys (
    id         blob primary key,
    request    text not null,     -- what was asked: a retry must ask the same
    status     integer not null,
    body       blob not null,
    reader     text not null,     -- the reader the ballot was cast as (their cookie)
    created_at integer not null   -- unix milliseconds
) strict;

create index idempotency_keys_by_age on idempotency_keys (created_at);

create table writer_checks (
    id         integer primary key check (id = 1),
    checked_at integer not null   -- unix milliseconds
) strict;
