#!/usr/bin/env bash
# Fills a poll of a Tribune SQLite database to N votes cast, fast: one
# set-based INSERT in one transaction through the sqlite3 CLI. The server must
# be stopped (the fill takes the database for itself).
#
#     bench/prefill.sh DATABASE_FILE POLL N
#
# The votes are shaped like real ones, so the indexes grow as they would:
# each one a distinct reader (32 random lowercase hex digits, as the reader's
# UUID in its cookie) and no address hash (a vote's address is kept only in
# `address_uses`, for the hour the cap needs); options 1..4 in turn; one vote
# a millisecond, the newest more than an hour before now (outside the
# per-address window). The tallies stay right: the fill adds what it inserted
# to each option's `cast_votes` in the same transaction, as the writer does.
#
# Votes already cast count towards N (a poll at 1,2 M filled to 10 M gets
# 8,8 M more). Prints "filled N_ADDED votes in S s; the poll now has N cast".
#
# For speed, and only because the database is a throwaway benchmark copy:
# the fill runs with a rollback journal instead of WAL, synchronous=OFF and a
# page cache of PREFILL_CACHE_MIB (2048) MiB, then puts the database back in
# WAL mode. Needs sqlite3 (apt-get install -y sqlite3).

set -euo pipefail

die() { echo "error: $*" >&2; exit 2; }

[[ $# -eq 3 ]] || die "usage: $0 DATABASE_FILE POLL N"
DB=$1 POLL=$2 N=$3
CACHE_MIB=${PREFILL_CACHE_MIB:-2048}
command -v sqlite3 >/dev/null 2>&1 || die "needs sqlite3 (apt-get install -y sqlite3)"
[[ -f "$DB" ]] || die "no database at $DB"
[[ "$N" =~ ^[0-9]+$ ]] || die "N must be a whole number, not $N"
[[ "$POLL" =~ ^[A-Za-z0-9_-]+$ ]] || die "unexpected poll id $POLL"

cast_votes() {
    sqlite3 "$DB" "select coalesce(sum(cast_votes), 0) from poll_options where poll_id = '$POLL'"
}

options=$(sqlite3 "$DB" "select count(*) from poll_options where poll_id = '$POLL'")
[[ "$options" -gt 0 ]] || die "no poll $POLL in $DB"
before=$(cast_votes)
add=$((N - before))
if [[ "$add" -le 0 ]]; then
    echo "filled 0 votes in 0.00 s; the poll now has $before cast (asked for $N)"
    exit 0
fi

# The fill's rows are those after the newest row now (ids only grow).
last_id=$(sqlite3 "$DB" "select coalesce(max(id), 0) from votes")
now_ms=$(($(date +%s) * 1000))
# The newest prefilled vote is cast two hours ago, the oldest `add` ms before it.
first_ms=$((now_ms - 7200000 - add))

start=$(date +%s.%N)
sqlite3 -bail "$DB" > /dev/null <<SQL
pragma journal_mode = delete;
pragma synchronous = off;
pragma cache_size = -$((CACHE_MIB * 1024));
begin;
with recursive n(i) as (select 1 union all select i + 1 from n where i < $add),
     options(k, id) as (select row_number() over (order by position) - 1, option_id
                          from poll_options where poll_id = '$POLL')
insert into votes (poll_id, option_id, voter, address_hash, cast_at)
select '$POLL',
       (select id from options where k = i % $options),
       lower(hex(randomblob(16))),
       null,
       $first_ms + i
  from n;
update poll_options
   set cast_votes = cast_votes + added.votes
  from (select option_id, count(*) as votes from votes
         where id > $last_id
         group by option_id) as added
 where poll_options.poll_id = '$POLL' and poll_options.option_id = added.option_id;
commit;
pragma journal_mode = wal;
SQL
end=$(date +%s.%N)

after=$(cast_votes)
[[ "$after" -eq "$N" ]] || die "the poll has $after votes cast after the fill, expected $N"
rows=$(sqlite3 "$DB" "select count(*) from votes where poll_id = '$POLL'")
[[ "$rows" -eq "$after" ]] || die "the poll's tallies say $after, its rows $rows"
awk -v a="$add" -v s="$start" -v e="$end" -v n="$after" \
    'BEGIN { printf "filled %d votes in %.2f s; the poll now has %d cast\n", a, e - s, n }'
