-- wrk script for the Pinpoint benchmark (bench/run.ts sets the environment; usable by hand too):
--   BENCH_METHOD   POST (default): a 1024-byte JSON body, content-type application/json
--                  GET: no body
--   BENCH_API_KEY  if set, sent as `x-api-key` (run.ts sends it to every scenario, so the first four
--                  receive byte-identical requests; only pinpoint-policies and pinpoint-chain check it)
--   BENCH_BEARER_TOKEN  if set, sent as `Authorization: Bearer <token>` (run.ts: pinpoint-chain only)
--   BENCH_ORIGIN   if set, sent as `Origin` (run.ts: pinpoint-chain only, https://app.example.com)
-- e.g. BENCH_API_KEY=pp_bench_0123456789abcdef wrk -t1 -c50 -d10s --latency -s bench/post-1k.lua http://127.0.0.1:19082/v1/orders
--
-- The body recipe is mirrored by requestBody() in bench/run.ts (its pre-flight check): keep both in sync.

local method = os.getenv("BENCH_METHOD") or "POST"
local key = os.getenv("BENCH_API_KEY")
local token = os.getenv("BENCH_BEARER_TOKEN")
local origin = os.getenv("BENCH_ORIGIN")

local head = '{"order":{"id":"ord_0001","customer":"cus_42","currency":"EUR",'
  .. '"items":[{"sku":"A-100","qty":2,"price":1999},{"sku":"B-200","qty":1,"price":4999}]},"pad":"'
local tail = '"}'
local body = head .. string.rep("x", 1024 - #head - #tail) .. tail
assert(#body == 1024, "body must be 1024 bytes")

wrk.method = method
if method == "POST" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end
if key and key ~= "" then
  wrk.headers["x-api-key"] = key
end
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
if origin and origin ~= "" then
  wrk.headers["Origin"] = origin
end
