-- wrk: GET /thumb over IMAGES different sources in turn, cover 320x200.
local n = tonumber(os.getenv("IMAGES") or "16")
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", string.format(
    "/thumb?src=img%02d.jpg&w=320&h=200&fit=cover", i % n))
end
