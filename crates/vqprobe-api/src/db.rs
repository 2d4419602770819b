//! Running store work off the async threads.

use crate::error::ApiError;

/// Runs blocking database work on tokio's blocking pool.
pub(crate) async fn blocking<R, F>(f: F) -> Result<R, ApiError>
where
    F: FnOnce() -> Result<R, ApiError> + Send + 'static,
    R: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(out) => out,
        Err(e) => Err(ApiError::Internal(format!("database task failed: {e}"))),
    }
}
