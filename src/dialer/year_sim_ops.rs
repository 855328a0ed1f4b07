//! The year simulation's operators: leads arriving, campaigns created and scheduled,
//! paused, resumed, cancelled and re-configured, numbers put on and taken off the
//! do-not-call list, each through the same functions the API and dashboard call.

use chrono::{DateTime, Duration, Utc};
use rand::Rng;

use super::{Campaign, Sim, leads, oracle};
use crate::campaigns::CampaignStatus;
use crate::db::{self, schedules::CancelTarget};
use crate::schedules::{BulkRequest, ScheduleError, Selection};

impl Sim {
    pub(super) fn import(&mut self, n: usize) {
        let now = self.now;
        let (csv, prelisted) = self.maker.csv(&mut self.rng, n);
        for phone in prelisted {
            // Listed before the lead arrives: the import's scrub must mark it.
            self.db()
                .write_blocking(|tx| db::dnc::add(tx, &phone, "sim", "listed early", "sim", db::to_ms(now)))
                .unwrap();
            self.oracle.dnc_add(&phone, now);
            self.stats.dnc_added += 1;
        }
        let imported = self.maker.import(&self.s.db, &csv, &mut self.oracle);
        self.stats.leads += imported;
    }

    pub(super) fn new_campaign(&mut self) {
        let plan = leads::random_plan(&mut self.rng);
        let json = leads::settings_json(&plan);
        let now_ms = db::to_ms(self.now);
        let name = format!("sim {}", self.stats.campaigns + 1);
        let id = self
            .db()
            .write_blocking(|tx| {
                let id = db::campaigns::create(tx, &name, "sim", now_ms)?.unwrap();
                db::campaigns::set_settings(tx, id, &json, "sim", now_ms)?;
                Ok(id)
            })
            .unwrap();
        self.stats.campaigns += 1;
        self.campaigns.insert(id, Campaign { plan, stopped: false, closed: false });
        self.schedule(id);
    }

    /// Schedules a random share of the pending leads to campaign `id`, as the
    /// dashboard's bulk schedule does. False if nothing was scheduled.
    pub(super) fn schedule(&mut self, id: i64) -> bool {
        let pending: Vec<i64> = self
            .db()
            .read_blocking(|c| {
                Ok(c.prepare("SELECT id FROM leads WHERE status = 'pending' ORDER BY id")?
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<_, _>>()?)
            })
            .unwrap();
        let share = self.rng.gen_range(0.3..=1.0);
        let ids: Vec<i64> = pending.into_iter().filter(|_| self.rng.gen_bool(share)).take(150).collect();
        if ids.is_empty() {
            return false;
        }
        let req = BulkRequest {
            selection: Selection::Ids(ids),
            start_at: self.now + Duration::seconds(self.rng.gen_range(0..=7200)),
            timezone: oracle::DEFAULT_ZONE,
            parallel_calls: self.rng.gen_range(1..=50),
            interval_seconds: self.rng.gen_range(1..=3600),
            campaign_id: id,
        };
        let created = match self.rt.block_on(crate::schedules::create(self.db(), req, self.now)) {
            Ok(created) => created,
            Err(ScheduleError::CampaignClosed { .. }) => {
                // The scheduler completed it (every lead has an outcome): final, like a cancel.
                self.campaigns.get_mut(&id).unwrap().closed = true;
                return false;
            }
            Err(e) => panic!("schedule for campaign {id}: {e}"),
        };
        let start = DateTime::parse_from_rfc3339(&created.start_at).unwrap().with_timezone(&Utc);
        self.schedule_start.insert(created.schedule_id, start);
        self.next_batch = Some(self.next_batch.map_or(start, |t| t.min(start)));
        self.stats.schedules += 1;
        true
    }

    /// What operators do now and then: campaigns, pauses, settings, the DNC list.
    pub(super) fn people(&mut self) {
        let now = self.now;
        let now_ms = db::to_ms(now);
        if self.rng.gen_bool(0.002) {
            self.new_campaign();
        }
        let mut ids: Vec<i64> = self.campaigns.iter().filter(|(_, c)| !c.closed).map(|(id, _)| *id).collect();
        ids.sort_unstable();
        if ids.is_empty() {
            return;
        }
        let id = ids[self.rng.gen_range(0..ids.len())];
        let roll = self.rng.gen_range(0.0..1.0);
        let stopped = self.campaigns[&id].stopped;
        // Pauses are short-lived (resumed with a higher chance); cancels are rare.
        let to = match roll {
            r if r < 0.01 && !stopped => Some(CampaignStatus::Paused),
            r if r < 0.06 && stopped => Some(CampaignStatus::Running),
            r if (0.06..0.0615).contains(&r) => Some(CampaignStatus::Cancelled),
            _ => None,
        };
        if let Some(to) = to {
            let moved = self
                .db()
                .write_blocking(|tx| {
                    let moved = db::campaigns::transition(tx, id, to, "sim", "sim", now_ms)?.is_ok();
                    if moved && to == CampaignStatus::Cancelled {
                        // As the API's cancel does: the campaign's schedules go too.
                        for schedule in db::campaigns::active_schedules(tx, id)? {
                            db::schedules::cancel(tx, CancelTarget::One(schedule), now_ms)?;
                        }
                    }
                    Ok(moved)
                })
                .unwrap();
            if moved {
                let c = self.campaigns.get_mut(&id).unwrap();
                c.stopped = to != CampaignStatus::Running;
                c.closed = to == CampaignStatus::Cancelled;
                self.stats.pauses += usize::from(to == CampaignStatus::Paused);
                self.stats.cancels += usize::from(to == CampaignStatus::Cancelled);
                if c.closed {
                    let waiting: Vec<i64> =
                        self.lead_campaign.iter().filter(|(_, c)| **c == id).map(|(l, _)| *l).collect();
                    waiting.into_iter().for_each(|l| self.oracle.released(l));
                }
            }
        } else if (0.07..0.075).contains(&roll) {
            let plan = leads::random_plan(&mut self.rng);
            let json = leads::settings_json(&plan);
            self.db().write_blocking(|tx| db::campaigns::set_settings(tx, id, &json, "sim", now_ms)).unwrap();
            self.campaigns.get_mut(&id).unwrap().plan = plan;
            self.stats.settings_changed += 1;
        } else if (0.08..0.09).contains(&roll) && !stopped {
            let _ = self.schedule(id);
        }
        if self.rng.gen_bool(0.015) {
            let mut phones: Vec<&String> = self.oracle.leads.values().map(|l| &l.phone).collect();
            phones.sort_unstable();
            let phone = phones[self.rng.gen_range(0..phones.len())].clone();
            if self.rng.gen_bool(0.9) {
                self.db().write_blocking(|tx| db::dnc::add(tx, &phone, "sim", "opted out", "sim", now_ms)).unwrap();
                self.oracle.dnc_add(&phone, now);
                self.stats.dnc_added += 1;
            } else if self.db().write_blocking(|tx| db::dnc::remove(tx, &phone, "sim", "sim", now_ms)).unwrap() {
                self.oracle.dnc_remove(&phone, now);
                self.stats.dnc_removed += 1;
            }
        }
    }
}
