//! Fan-out of run [`Event`]s to every consumer: the trajectory writer, the CLI's human or JSON
//! output, tests. Secrets are redacted once, here, before any sink sees an event.

use std::sync::{Arc, Mutex};

use rigor_protocol::Event;

use crate::redact::Redactor;

/// Something that consumes events. Sinks must not fail the run: they handle their own errors.
pub trait EventSink: Send {
    /// Receives one event.
    fn emit(&mut self, event: &Event);
}

/// Sends each event, redacted, to all registered sinks in registration order. Cloning shares
/// the sinks.
#[derive(Clone, Default)]
pub struct Emitter {
    sinks: Arc<Mutex<Vec<Box<dyn EventSink>>>>,
    redactor: Redactor,
}

impl Emitter {
    /// An emitter with no sinks that redacts the secrets of this process's environment.
    pub fn new() -> Self {
        Self::with_redactor(Redactor::from_environment())
    }

    /// An emitter with no sinks and the given redactor.
    pub fn with_redactor(redactor: Redactor) -> Self {
        Self { sinks: Arc::default(), redactor }
    }

    /// The redactor applied to every event, for the other records of the run (`patch.diff`,
    /// `result.json`).
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Adds a sink.
    pub fn add(&self, sink: impl EventSink + 'static) {
        self.lock().push(Box::new(sink));
    }

    /// Emits an event to every sink.
    pub fn emit(&self, event: Event) {
        let event = self.redactor.redact_event(event);
        for sink in self.lock().iter_mut() {
            sink.emit(&event);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Box<dyn EventSink>>> {
        // A sink that panicked leaves the list usable: keep emitting to the rest.
        self.sinks.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A sink that collects events in memory (for tests and replay).
#[derive(Clone, Default)]
pub struct Collector {
    events: Arc<Mutex<Vec<Event>>>,
}

impl Collector {
    /// The events received so far.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl EventSink for Collector {
    fn emit(&mut self, event: &Event) {
        if let Ok(mut events) = self.events.lock() {
            events.push(event.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use rigor_protocol::{RunStatus, RunTotals};

    use super::*;

    #[test]
    fn sinks_never_see_an_unredacted_event() {
        let emitter = Emitter::with_redactor(Redactor::new([("DB_PASS".to_string(), "submitted".to_string())]));
        let collector = Collector::default();
        emitter.add(collector.clone());
        emitter.emit(Event::Notice { message: "the password is submitted".into() });
        // Redacting the status makes this event invalid: it is withheld, not passed on as is.
        emitter.emit(Event::RunFinished {
            status: RunStatus::Submitted,
            summary: "done".into(),
            patch: String::new(),
            totals: RunTotals::default(),
        });
        let events = collector.events();
        assert_eq!(events[0], Event::Notice { message: "the password is [REDACTED:DB_PASS]".into() });
        let Event::Notice { message } = &events[1] else { panic!("{:?}", events[1]) };
        assert!(message.contains("withheld"), "{message}");
        assert!(!format!("{events:?}").contains("submitted"), "{events:?}");
        assert_eq!(emitter.redactor().redact("submitted"), "[REDACTED:DB_PASS]");
    }
}
