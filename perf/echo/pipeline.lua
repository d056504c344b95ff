-- wrk script for echo/run.sh's HTTP syscall count.
--
--   wrk -t1 -c64 -d3s -s pipeline.lua URL -- DEPTH
--
-- DEPTH GET requests go out in one write; wrk sends the next batch once
-- all DEPTH answers are in (it counts the requests in the string).  With
-- DEPTH 1 the script leaves request() undefined, so wrk sends its own
-- prebuilt request.  done() prints one line for run.sh:
--
--   ECHOWRK requests=N duration_us=N errors=N non2xx=N

init = function(args)
   local depth = tonumber(args[1]) or 16
   if depth <= 1 then
      request = nil
      return
   end
   local r = {}
   for i = 1, depth do
      r[i] = wrk.format(nil, "/")
   end
   local batch = table.concat(r)
   request = function() return batch end
end

done = function(summary, latency, requests)
   local e = summary.errors
   io.write(string.format("ECHOWRK requests=%d duration_us=%d errors=%d non2xx=%d\n",
      summary.requests, summary.duration,
      e.connect + e.read + e.write + e.timeout, e.status))
end
