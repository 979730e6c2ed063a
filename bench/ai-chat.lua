-- wrk script for the AI gateway benchmark (bench/ai.ts sets the environment; usable by hand too).
-- Every request is a small OpenAI chat request, POSTed as JSON over keep-alive:
--   {"model":"<BENCH_AI_MODEL>","messages":[{"role":"user","content":"Say hello"}]}
-- with ,"stream":true added when BENCH_AI_STREAM=1.
--   BENCH_AI_MODEL   bench-json (default) or bench-stream: the model, which picks the mock's answer
--                    through Pinpoint (bench/configs/ai.yaml); direct and Portkey get the same body
--   BENCH_AI_STREAM  1: ask for a stream
--   BENCH_AI_KEY     if set, sent as `Authorization: Bearer <key>`: Pinpoint's api key, or the
--                    provider key Portkey forwards (direct: ignored by the mock)
--   BENCH_PORTKEY_CUSTOM_HOST  if set, `x-portkey-provider: openai` and `x-portkey-custom-host: <it>`
--                    (e.g. http://127.0.0.1:19111/json/v1): how Portkey is told where the provider is
-- e.g. BENCH_AI_KEY=pp_bench_0123456789abcdef wrk -t1 -c50 -d10s --latency -s bench/ai-chat.lua http://127.0.0.1:19182/v1/chat/completions
--
-- The body recipe is mirrored by chatBody() in bench/ai.ts (its pre-flight check): keep both in sync.

local model = os.getenv("BENCH_AI_MODEL") or "bench-json"
local stream = os.getenv("BENCH_AI_STREAM") == "1"
local key = os.getenv("BENCH_AI_KEY")
local customHost = os.getenv("BENCH_PORTKEY_CUSTOM_HOST")

local body = '{"model":"' .. model .. '","messages":[{"role":"user","content":"Say hello"}]'
if stream then
  body = body .. ',"stream":true'
end
body = body .. '}'

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
if key and key ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. key
end
if customHost and customHost ~= "" then
  wrk.headers["x-portkey-provider"] = "openai"
  wrk.headers["x-portkey-custom-host"] = customHost
end
