-- wrk script for the HTTP benchmarks.
--
--   wrk -t1 -c CONNS ... -s pipeline.lua URL -- DEPTH CONNS
--
-- DEPTH (default 16) GET requests go out in one write, and the next batch
-- only once all DEPTH answers are in.  With DEPTH 1 the script defines no
-- request(), so wrk sends its own prebuilt request, exactly as without a
-- script.  done() prints one machine-readable line for run-http.sh:
--
--   WRK requests=N duration_us=N p50_us=N p99_us=N samples=N errors=N non2xx=N
--
-- Latency: wrk records one sample per batch (per request at DEPTH 1), from
-- the batch's write to its last answer.  Before done() runs, wrk 4.1 adds
-- "coordinated omission" samples (stats_correct): for every sample at n >=
-- 2e, one more at each n - k*e > e, with e computed from requests, not
-- batches.  With pipelining e is DEPTH times too small, the added samples
-- outnumber the real ones, and wrk's own percentiles come out as 0.  done()
-- reads wrk's histogram (through LuaJIT's FFI: wrk's Lua API gives no
-- direct access to a bucket), undoes that correction, which is
-- deterministic, and reports the percentiles of the samples wrk measured,
-- at every depth.  samples= is their number: requests / DEPTH.  If the
-- histogram does not look like wrk 4.1's, it falls back to wrk's
-- percentiles and says latency=wrk-corrected.  CONNS must be wrk's -c.

local ffi = require("ffi")
ffi.cdef [[
typedef struct {
   uint64_t count, limit, min, max;
   uint64_t data[?];
} eddy_wrk_stats_t;
]]

init = function(args)
   depth = tonumber(args[1]) or 16
   conns = tonumber(args[2]) or 0
   if depth <= 1 then
      request = nil
      return
   end
   local r = {}
   for i = 1, depth do
      r[i] = wrk.format(nil, "/")
   end
   req = table.concat(r)
end

request = function()
   return req
end

local threads = {}

setup = function(thread)
   table.insert(threads, thread)
end

-- Percentiles ps (ascending) of the samples wrk recorded, without wrk's
-- correction; nil if the histogram is not wrk 4.1's.
local function measured(summary, latency, nconns, ps)
   local s = ffi.cast("eddy_wrk_stats_t **", latency)[0]
   local min, max = tonumber(s.min), tonumber(s.max)
   if min ~= latency.min or max ~= latency.max or max >= tonumber(s.limit) then
      return nil
   end
   local per = math.floor(summary.requests / nconns)
   local e = per > 0 and math.floor(summary.duration / per) or 0
   -- Undo from the top: a bucket j > e got one sample for every real
   -- sample at j + k*e, k >= 1; acc[j % e] sums the real ones above j.
   local real, acc, total = {}, {}, 0
   for j = max, 0, -1 do
      local v = tonumber(s.data[j])
      if e > 0 and j > e then
         local r = j % e
         local a = acc[r] or 0
         if v < a then return nil end
         v = v - a
      end
      if v > 0 then
         if e > 0 then
            local r = j % e
            acc[r] = (acc[r] or 0) + v
         end
         real[j] = v
         total = total + v
      end
   end
   local out, seen, k = {}, 0, 1
   for j = 0, max do
      local v = real[j]
      if v then
         seen = seen + v
         while k <= #ps and seen >= math.ceil(ps[k] / 100 * total) do
            out[k] = j
            k = k + 1
         end
      end
   end
   return out, total
end

done = function(summary, latency, requests)
   local nconns = 0
   for _, t in ipairs(threads) do nconns = nconns + (t:get("conns") or 0) end
   local p, total, note = nil, 0, ""
   if nconns > 0 and summary.requests > 0 then
      p, total = measured(summary, latency, nconns, { 50, 99 })
   end
   if p == nil then
      p = { latency:percentile(50), latency:percentile(99) }
      note = " latency=wrk-corrected"
   end
   local e = summary.errors
   io.write(string.format(
      "WRK requests=%d duration_us=%d p50_us=%d p99_us=%d samples=%d errors=%d non2xx=%d%s\n",
      summary.requests, summary.duration, p[1], p[2], total,
      e.connect + e.read + e.write + e.timeout, e.status, note))
end
