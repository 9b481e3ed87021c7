use domain::integration::{Integration, evolve};
use eventlog::Fold;
use schemas::Event;

/// How the log folds an integration's stream (`integration-<id>`).
pub struct IntegrationFold;

impl Fold for IntegrationFold {
    type State = Integration;
    const STATE_VERSION: u16 = 1;

    fn apply(state: Integration, event: &Event) -> Integration {
        evolve(state, event)
    }
}
