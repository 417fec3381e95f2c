//! The health gate on a thread of its own, so a slow or hung gate never
//! blocks the engine: operator requests keep being served while it is
//! asked, and a gate that does not answer in time gives an Error
//! observation (which holds, and pauses past the no-data budget).

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use crate::rollout::{format_duration, HealthGate, Observation, Timestamp};

/// A gate served by a worker thread.
#[derive(Debug)]
pub(crate) struct GateWorker {
    ask: Sender<Timestamp>,
    answers: Receiver<(Timestamp, Observation)>,
    /// The instant of a question not answered yet.
    outstanding: Option<Timestamp>,
}

impl GateWorker {
    pub(crate) fn spawn(mut gate: Box<dyn HealthGate + Send>) -> GateWorker {
        let (ask, questions) = mpsc::channel::<Timestamp>();
        let (tell, answers) = mpsc::channel();
        // The thread ends when the engine drops its sender; a hung gate keeps
        // it (and only it) busy.
        let _ = std::thread::Builder::new()
            .name("genesis-flags-gate".into())
            .spawn(move || {
                while let Ok(at) = questions.recv() {
                    let observation = gate.observe(at);
                    if tell.send((at, observation)).is_err() {
                        break;
                    }
                }
            });
        GateWorker {
            ask,
            answers,
            outstanding: None,
        }
    }

    /// Asks for the observation at `at` and waits up to `timeout`, calling
    /// `meanwhile` every `slice` of waiting.
    pub(crate) fn observe(
        &mut self,
        at: Timestamp,
        timeout: Duration,
        slice: Duration,
        meanwhile: &mut dyn FnMut(),
    ) -> Observation {
        if let Some(earlier) = self.outstanding {
            // Drain a late answer to an earlier question, if it came.
            match self.answers.try_recv() {
                Ok(_) => self.outstanding = None,
                Err(_) => {
                    return Observation::failed(&format!(
                        "the health gate is still busy with the tick of {earlier}"
                    ))
                }
            }
        }
        if self.ask.send(at).is_err() {
            return Observation::failed("the health gate stopped");
        }
        self.outstanding = Some(at);
        let started = Instant::now();
        loop {
            let left = timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Observation::failed(&format!(
                    "the health gate did not answer within {}",
                    format_duration(timeout)
                ));
            }
            match self
                .answers
                .recv_timeout(left.min(slice.max(Duration::from_millis(1))))
            {
                Ok((t, observation)) if t == at => {
                    self.outstanding = None;
                    return observation;
                }
                Ok(_) => {} // a late answer to an earlier tick
                Err(RecvTimeoutError::Timeout) => meanwhile(),
                Err(RecvTimeoutError::Disconnected) => {
                    self.outstanding = None;
                    return Observation::failed("the health gate stopped (it panicked)");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hung_gate_gives_an_error_and_the_waiter_keeps_working() {
        let gate = |_at: Timestamp| -> Observation {
            std::thread::sleep(Duration::from_secs(3600));
            Observation::healthy()
        };
        let mut worker = GateWorker::spawn(Box::new(gate));
        let mut served = 0;
        let t = Timestamp::from_unix_millis(0);
        let obs = worker.observe(
            t,
            Duration::from_millis(300),
            Duration::from_millis(20),
            &mut || {
                served += 1;
            },
        );
        assert!(
            matches!(obs.error_rate, crate::rollout::Reading::Failed(ref m) if m.contains("did not answer"))
        );
        assert!(served >= 2, "the waiter ran {served} times");
        // The next tick does not queue behind the hung one.
        let obs = worker.observe(
            t,
            Duration::from_secs(5),
            Duration::from_millis(20),
            &mut || {},
        );
        assert!(
            matches!(obs.error_rate, crate::rollout::Reading::Failed(ref m) if m.contains("still busy"))
        );
    }

    #[test]
    fn answers_come_back_in_order() {
        let mut worker = GateWorker::spawn(Box::new(|_at: Timestamp| Observation::healthy()));
        for s in 0..5 {
            let obs = worker.observe(
                Timestamp::from_unix_millis(s * 1000),
                Duration::from_secs(60),
                Duration::from_millis(50),
                &mut || {},
            );
            assert_eq!(obs, Observation::healthy());
        }
    }
}
