//! The request server: a running engine applies the operator requests of
//! its request folder and answers them.

use super::engine::{Controller, Requester, Storage};
use super::RunEvent;
use crate::rollout::store::error::Refusal;
#[cfg(doc)]
use crate::rollout::store::requests::Mailbox;
use crate::rollout::store::requests::{Answer, Claimed};

impl Controller {
    /// Applies every waiting operator request and answers it. The folder is
    /// served only while others cannot write it; a request that cannot be
    /// read safely is refused and answered (see the request folder in the [module docs](super)).
    pub fn serve_requests(&mut self) -> Vec<RunEvent> {
        let Storage::Files(s) = &self.storage else {
            return Vec::new();
        };
        let mailbox = s.mailbox.clone();
        if let Some(reason) = mailbox.unsafe_folder() {
            return vec![RunEvent::RequestRefused { reason }];
        }
        let mut events = Vec::new();
        for claimed in mailbox.claim_all() {
            let (id, outcome, event) = match claimed {
                Err((id, refusal)) => {
                    events.push(RunEvent::RequestRefused {
                        reason: format!("request {id}: {refusal}"),
                    });
                    (id, Err(refusal), None)
                }
                Ok(Claimed { request, owner }) => {
                    let now = self.clock.now();
                    let requester = Requester {
                        claimed: (request.by != owner).then(|| request.by.clone()),
                        by: owner,
                        from_stage: request.from_stage,
                        from_revision: request.from_revision,
                    };
                    let result = if request.expires < now {
                        Err(Refusal::Expired {
                            at: request.expires,
                        })
                    } else {
                        self.apply_request(&request.operation, &requester, Some(&request.id))
                            .map_err(|e| Refusal::from(&e))
                    };
                    let event = RunEvent::Operation {
                        operation: request.operation.clone(),
                        by: requester.by.clone(),
                        outcome: result.clone().map_err(|e| e.to_string()),
                    };
                    (request.id, result, Some(event))
                }
            };
            let _ = mailbox.answer(&Answer { id, outcome });
            events.extend(event);
        }
        events
    }
}
