//! The NOC console: a single-page web app served from the binary at `/` (overview),
//! `/calls` (the list) and `/calls/{call_id}` (one call). It is built on the same
//! `/v1` API as any other client (no second query path): the page shell carries no
//! data, so it is served without a key, and the script asks for the key once, keeps it
//! in the tab's `sessionStorage` and sends it as the bearer header the API expects.
//!
//! Assets are compiled in (`include_bytes!`): nothing comes from a CDN and the console
//! works with no internet. Their URLs carry a fingerprint of the whole bundle
//! (`/console/<fp>/app.js`), so they can be cached for a year while the page itself
//! (`Cache-Control: no-cache`, with an `ETag`) always names the current bundle. Every
//! response carries a strict Content-Security-Policy: scripts, styles, images and
//! requests from this origin only, no inline script or style attribute, no framing.

use std::sync::{Arc, OnceLock};

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use super::error::ApiError;

/// The policy sent with every console response. `style-src 'self'` still lets scripts
/// set element styles through the CSSOM (the charting library and the bars do), but
/// no `style="…"` in markup and no `<style>` element.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; font-src 'self'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Where the fingerprinted assets live.
pub const ASSET_PREFIX: &str = "/console";

/// One embedded file.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// File name in URLs (`/console/<fp>/<name>`).
    pub name: &'static str,
    /// `Content-Type` it is served with.
    pub content_type: &'static str,
    /// The bytes.
    pub body: &'static [u8],
}

/// The page shell, with `{{name}}` where each asset's URL goes.
const INDEX_TEMPLATE: &str = include_str!("../console/index.html");

/// Every asset the page loads. The charting library is uPlot, vendored from its npm
/// package (see `console/vendor/uplot/README.md`).
pub const ASSETS: &[Asset] = &[
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../console/app.js"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../console/app.css"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../console/favicon.svg"),
    },
    Asset {
        name: "uPlot.iife.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../console/vendor/uplot/uPlot.iife.min.js"),
    },
    Asset {
        name: "uPlot.min.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../console/vendor/uplot/uPlot.min.css"),
    },
];

/// The page with its asset URLs filled in (`{{auth}}` still open), and the bundle's
/// fingerprint.
struct Built {
    fingerprint: String,
    index: String,
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mut h = Sha256::new();
        h.update(INDEX_TEMPLATE.as_bytes());
        for a in ASSETS {
            h.update(a.name.as_bytes());
            h.update(a.body);
        }
        let fingerprint = hex::encode(&h.finalize()[..6]);
        let mut index = INDEX_TEMPLATE.to_string();
        for a in ASSETS {
            let url = format!("{ASSET_PREFIX}/{fingerprint}/{}", a.name);
            index = index.replace(&format!("{{{{{}}}}}", a.name), &url);
        }
        Built { fingerprint, index }
    })
}

/// Total size of what a browser downloads for the console (the page and every asset),
/// in bytes.
pub fn bundle_size() -> usize {
    built().index.len() + ASSETS.iter().map(|a| a.body.len()).sum::<usize>()
}

/// The page as one router serves it: whether the API wants a key is written into it
/// (`<meta name="vqprobe-auth" content="key|none">`), so the script asks for the key
/// before its first request instead of after a 401.
#[derive(Debug)]
struct Page {
    html: String,
    etag: String,
}

impl Page {
    fn new(auth_required: bool) -> Page {
        let b = built();
        let auth = if auth_required { "key" } else { "none" };
        Page {
            html: b.index.replace("{{auth}}", auth),
            etag: format!("\"{}-{auth}\"", b.fingerprint),
        }
    }
}

/// The console's routes; they need no key (the data they show is fetched with one).
/// `auth_required`: whether the `/v1` API asks for a key.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>(auth_required: bool) -> Router<S> {
    let page = Arc::new(Page::new(auth_required));
    let serve = move |headers: HeaderMap| {
        let page = Arc::clone(&page);
        async move { serve_page(&page, &headers) }
    };
    Router::new()
        .route("/", get(serve.clone()))
        .route("/calls", get(serve.clone()))
        .route("/calls/", get(serve.clone()))
        .route("/calls/{*call_id}", get(serve))
        .route("/console/{fingerprint}/{name}", get(asset))
}

/// Headers every console response carries.
fn secure(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

/// The page shell (every console path serves it; the script routes on the path).
fn serve_page(page: &Page, headers: &HeaderMap) -> Response {
    let mut resp = if etag_matches(headers, &page.etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        page.html.clone().into_response()
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // Revalidate every time: a new binary must never run an old script.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&page.etag) {
        h.insert(header::ETAG, v);
    }
    secure(h);
    resp
}

fn etag_matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
}

/// An embedded asset. The current fingerprint is cached for a year; an older one (a
/// tab opened before an upgrade) still gets today's file, but uncached.
async fn asset(Path((fingerprint, name)): Path<(String, String)>) -> Response {
    let Some(a) = ASSETS.iter().find(|a| a.name == name) else {
        return ApiError::NotFound(format!("no console asset {name:?}")).into_response();
    };
    let current = fingerprint == built().fingerprint;
    let mut resp = a.body.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(a.content_type),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if current {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        }),
    );
    secure(h);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_names_every_asset_by_fingerprint() {
        let b = built();
        for auth in [true, false] {
            let page = Page::new(auth);
            assert!(!page.html.contains("{{"), "unfilled placeholder");
            for a in ASSETS {
                let url = format!("/console/{}/{}", b.fingerprint, a.name);
                assert!(page.html.contains(&url), "{url} missing from the page");
            }
            // Nothing from elsewhere: no scheme-relative or absolute URL in the shell.
            assert!(
                !page.html.contains("//"),
                "external reference in index.html"
            );
            assert!(!page.html.contains("style="), "inline style in index.html");
            let want = if auth { "key" } else { "none" };
            assert!(page.html.contains(&format!("content=\"{want}\"")));
        }
    }

    #[test]
    fn bundle_stays_small() {
        let size = bundle_size();
        assert!(size < 300 * 1024, "console bundle is {size} bytes");
    }
}
