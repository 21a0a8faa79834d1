//! Server-sent events over a reqwest response body.

use std::pin::Pin;

use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures_util::{Stream, StreamExt};

use crate::retry::{AttemptError, error_chain};

type Inner = Pin<Box<dyn Stream<Item = Result<Event, EventStreamError<reqwest::Error>>> + Send>>;

/// The events of a `text/event-stream` response, in order.
pub(crate) struct SseStream {
    inner: Inner,
}

impl SseStream {
    /// Starts reading `response`'s body as SSE.
    pub(crate) fn new(response: reqwest::Response) -> Self {
        Self { inner: Box::pin(response.bytes_stream().eventsource()) }
    }

    /// The next event; `Ok(None)` when the server closed the stream normally. A broken connection
    /// or undecodable bytes are a cut stream (retryable).
    pub(crate) async fn next(&mut self) -> Result<Option<Event>, AttemptError> {
        match self.inner.next().await {
            None => Ok(None),
            Some(Ok(event)) => Ok(Some(event)),
            Some(Err(EventStreamError::Transport(err))) => Err(AttemptError::cut(error_chain(&err))),
            Some(Err(err)) => Err(AttemptError::cut(format!("undecodable event stream: {err}"))),
        }
    }
}
