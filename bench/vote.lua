-- wrk script for bench/votes.sh: casts poll votes as distinct readers.
--
-- Every request is `POST /api/v1/polls/<poll>/votes` with `{"option": N}`,
-- N rotating 1..4, and no cookie, so each one is a new reader's vote.
--
-- Votes are sent only during the first VOTE_SECONDS of the run (default 10);
-- after that each connection sends harmless `GET /healthz` requests until wrk
-- stops (run wrk a few seconds longer than VOTE_SECONDS). That drain phase
-- lets every vote in flight get its answer before wrk closes its sockets, so
-- the number of 201s can be compared exactly with the poll's tally.
--
-- Per-thread counters are collected in done(): responses by status, votes
-- sent, votes answered (every response but the drain's 200s), and the length
-- of the vote window, from which votes.sh derives acknowledged votes/s.
--
-- Environment: POLL (default us-long-term-goals), VOTE_SECONDS (default 10).

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clk_id, bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("bench_timespec")
local function now()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local poll = os.getenv("POLL") or "us-long-term-goals"
local vote_seconds = tonumber(os.getenv("VOTE_SECONDS") or "10")
local vote_path = "/api/v1/polls/" .. poll .. "/votes"
local headers = { ["Content-Type"] = "application/json" }

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

-- Per-thread state (each wrk thread has its own Lua state).
counts = {}          -- status -> responses
sent_votes = 0       -- vote requests handed to wrk
answered_votes = 0   -- responses to vote requests
window = 0           -- seconds this thread spent in the vote phase
local started = nil
local deadline = nil
local option = 0
local drain_request = nil
local verified = true

function init(args)
  option = id or 0
  verified = (id ~= 0)
  drain_request = wrk.format("GET", "/healthz")
end

function request()
  if not verified then
    -- wrk builds one request in thread 0 before the run to check the script
    -- and never sends it: neither count it nor start the clock.
    verified = true
    return wrk.format("POST", vote_path, headers, '{"option": 1}')
  end
  local t = now()
  if started == nil then
    started = t
    deadline = t + vote_seconds
  end
  if t < deadline then
    option = option % 4 + 1
    sent_votes = sent_votes + 1
    return wrk.format("POST", vote_path, headers, '{"option": ' .. option .. '}')
  end
  window = vote_seconds
  return drain_request
end

function response(status, headers, body)
  local key = tostring(status)
  counts[key] = (counts[key] or 0) + 1
  -- /healthz (the drain) answers 200; a vote never does (201, or 4xx/5xx).
  if status ~= 200 then
    answered_votes = answered_votes + 1
  end
end

function done(summary, latency, requests)
  local total = {}
  local sent, answered, acked = 0, 0, 0
  local win = 0
  for _, thread in ipairs(threads) do
    local c = thread:get("counts")
    for status, n in pairs(c) do
      total[status] = (total[status] or 0) + n
    end
    sent = sent + thread:get("sent_votes")
    answered = answered + thread:get("answered_votes")
    local w = thread:get("window")
    if w > win then win = w end
  end
  acked = total["201"] or 0
  local statuses = {}
  for status, _ in pairs(total) do table.insert(statuses, status) end
  table.sort(statuses)
  for _, status in ipairs(statuses) do
    io.write(string.format("status %s %d\n", status, total[status]))
  end
  io.write(string.format("votes_sent %d\n", sent))
  io.write(string.format("votes_answered %d\n", answered))
  io.write(string.format("votes_acknowledged %d\n", acked))
  io.write(string.format("vote_window_seconds %s\n", win))
  io.write(string.format("errors connect %d read %d write %d status %d timeout %d\n",
    summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout))
  -- wrk keeps one latency histogram: it covers votes and drain requests alike.
  io.write(string.format("latency_ms(all requests) p50 %.2f p90 %.2f p99 %.2f max %.2f\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
