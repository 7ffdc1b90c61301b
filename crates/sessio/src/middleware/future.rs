//! [`ResponseFuture`]: the inner service's response, then the session's save.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Response;

use super::policy::{apply, error_response, finish, plan};
use crate::config::Config;
use crate::session::Session;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

pin_project_lite::pin_project! {
    /// The response future of [`SessionService`]: the inner service's, then the session's
    /// save when there is one to make. A request that needs no store work finishes without
    /// an allocation of its own.
    pub struct ResponseFuture<F, ResBody> {
        #[pin]
        pub(super) inner: F,
        pub(super) session: Option<Session>,
        pub(super) config: Arc<Config>,
        pub(super) saving: Option<BoxFuture<Response<ResBody>>>,
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F, ResBody>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: From<String> + Send + 'static,
{
    type Output = Result<Response<ResBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            if let Some(saving) = this.saving.as_mut() {
                return saving.as_mut().poll(cx).map(Ok);
            }
            let mut res = std::task::ready!(this.inner.as_mut().poll(cx))?;
            let Some(session) = this.session.take() else {
                // Polled again after completion: the inner future decides.
                return Poll::Ready(Ok(res));
            };
            let plan = plan(&session, this.config, res.status());
            if !plan.needs_store() {
                apply(&session, this.config, &mut res, plan);
                return Poll::Ready(Ok(res));
            }
            let config = this.config.clone();
            *this.saving = Some(Box::pin(async move {
                match finish(&session, &config, &mut res, plan).await {
                    Ok(()) => res,
                    Err(error) => error_response(error, &session),
                }
            }));
        }
    }
}
