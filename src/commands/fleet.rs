//! Fleet commands: what a hub records of the sites it follows, on each site's stream (`site-<name>`).

use cairn_events::catalogue::{FleetSiteBroken, FleetSiteJoined};
use cairn_events::{DomainEvent, ExpectedVersion};

use super::{Command, Decision, State};
use crate::error::CommandError;

/// A hub begins to follow a site: `FleetSiteJoined`, once per site (its stream must not exist yet).
#[derive(Debug, Clone)]
pub struct JoinSite {
    pub site: String,
}

impl Command for JoinSite {
    type Output = ();

    fn decide(self, _: &dyn State) -> Result<Decision<()>, CommandError> {
        let event = DomainEvent::from(FleetSiteJoined { site: self.site });
        Ok(Decision::new(()).event(event, ExpectedVersion::NoStream))
    }
}

/// A hub found a site's published log broken at `first_bad`: `FleetSiteBroken`, which raises a `site_broken`
/// alert.
#[derive(Debug, Clone)]
pub struct MarkSiteBroken {
    pub site: String,
    pub first_bad: u64,
    pub detail: String,
}

impl Command for MarkSiteBroken {
    type Output = ();

    fn decide(self, _: &dyn State) -> Result<Decision<()>, CommandError> {
        let event = DomainEvent::from(FleetSiteBroken {
            site: self.site,
            first_bad: self.first_bad,
            detail: self.detail,
        });
        Ok(Decision::new(()).event(event, ExpectedVersion::StreamExists))
    }
}
