-- wrk: 환경 변수 QUERY의 GraphQL 질의를 TOKEN으로 POST한다.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("TOKEN") or "")
wrk.body = '{"query":"' .. os.getenv("QUERY") .. '"}'
