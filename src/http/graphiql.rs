//! 바이너리에 담은 GraphiQL (npm 빌드를 `assets/graphiql/`에 둔 것). CDN도 외부 주소도 쓰지 않는다.
use axum::extract::Path;
use axum::http::header;
use axum::response::IntoResponse;

use super::reply::not_found;

/// `GET /graphql`에 질의가 없을 때의 GraphiQL 첫 화면.
pub fn index() -> axum::response::Response {
    asset("index.html")
}

/// `GET /graphiql/{file}`: 첫 화면은 `/graphql`에서만.
pub async fn graphiql_asset(Path(file): Path<String>) -> axum::response::Response {
    if file == "index.html" {
        return not_found();
    }
    asset(&file)
}

fn asset(file: &str) -> axum::response::Response {
    const JS: &str = "text/javascript; charset=utf-8";
    let (body, ty): (&'static [u8], &str) = match file {
        "index.html" => (include_bytes!("../../assets/graphiql/index.html"), "text/html; charset=utf-8"),
        "init.js" => (include_bytes!("../../assets/graphiql/init.js"), JS),
        "graphiql.min.js" => (include_bytes!("../../assets/graphiql/graphiql.min.js"), JS),
        "react.production.min.js" => (include_bytes!("../../assets/graphiql/react.production.min.js"), JS),
        "react-dom.production.min.js" => (include_bytes!("../../assets/graphiql/react-dom.production.min.js"), JS),
        "graphiql.min.css" => (include_bytes!("../../assets/graphiql/graphiql.min.css"), "text/css; charset=utf-8"),
        _ => return not_found(),
    };
    ([(header::CONTENT_TYPE, ty), (header::CACHE_CONTROL, "public, max-age=3600")], body).into_response()
}
