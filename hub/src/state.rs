//! What every hub handler shares: the catalogue, the division registry, the store, the query
//! engine and the clock.

use std::{path::Path, sync::Arc};

use pingan_domain::{Areas, Catalogue, Validator, department::Departments};

use crate::{
    access::authz::Authorizer,
    clock::Clock,
    federation::{
        forward::{self, Dirty},
        owners::Owners,
    },
    query::{Deadlines, Engine, QueryError},
    store::{Store, StoreAt, StoreError},
};

/// The hub's shared state.
#[derive(Debug, Clone)]
pub struct HubState {
    pub catalogue: Arc<Catalogue>,
    pub areas: Arc<Areas>,
    /// The deployment's departments (条): who may send department reports.
    pub departments: Arc<Departments>,
    pub store: Arc<Store>,
    pub engine: Arc<Engine>,
    pub clock: Clock,
    pub auth: Arc<Authorizer>,
    /// Subtrees owned by child hubs (federation).
    pub owners: Arc<Owners>,
    /// Records to forward to the parent hub, marked as reports commit (federation).
    pub forward: Arc<Dirty>,
    /// Who may ask how much at once (gRPC and the dashboard alike).
    pub gate: Arc<crate::query::gate::Gate>,
    /// Reminders (催报), when the hub sends them: the webhook and the contacts.
    pub reminders: Option<Arc<crate::remind::RemindConfig>>,
    /// Map boundaries for the dashboard (`serve --boundaries DIR`); none by default.
    pub boundaries: Arc<crate::web::boundaries::Boundaries>,
}

/// Why a hub could not open its data.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("loading the rollups: {0}")]
    Query(#[from] QueryError),
    #[error("{0}")]
    Orphans(String),
}

/// Refuses a catalogue that would orphan stored figures: a metric the stored reports carry that
/// it no longer has (retired metrics are kept), or a part no longer among its category's values.
pub fn check_catalogue_keeps(store: &Store, catalogue: &Catalogue) -> Result<(), OpenError> {
    orphans(&store.reader()?.catalogue_use()?, catalogue)
}

/// The check of [`check_catalogue_keeps`] on the (metric, part) pairs a store holds.
pub fn orphans(used: &[(String, String)], catalogue: &Catalogue) -> Result<(), OpenError> {
    let mut orphans = Vec::new();
    for (metric, part) in used {
        let Some(id) = catalogue.metric_id(metric) else {
            if part.is_empty() {
                orphans.push(format!(
                    "指标 {metric} 已从目录中删除（改为 retired = true 以保留历史）"
                ));
            }
            continue;
        };
        if part.is_empty() {
            continue;
        }
        let kept = catalogue
            .category_of(&id)
            .is_some_and(|c| c.values.iter().any(|v| v == part));
        if !kept {
            orphans.push(format!(
                "{} 的类别值「{part}」已不在目录中（保留该值，改名请新增一个值）",
                catalogue.label(&id)
            ));
        }
    }
    if orphans.is_empty() {
        return Ok(());
    }
    Err(OpenError::Orphans(format!(
        "指标目录的改动会使已存储的报表数据失去归属，未启动 (the catalogue would orphan stored figures; not started)：{}",
        orphans.join("；")
    )))
}

impl HubState {
    /// Opens the store in `data`, with the query engine hooked to its commits, and loads the
    /// rollups from every current revision stored.
    pub fn open(
        data: &Path,
        catalogue: Catalogue,
        areas: Areas,
        clock: Clock,
        deadlines: Deadlines,
    ) -> Result<HubState, OpenError> {
        HubState::open_on(
            data,
            StoreAt::new(data, None),
            catalogue,
            areas,
            clock,
            deadlines,
        )
    }

    /// [`HubState::open`] with the store at `store` (a PostgreSQL database, say).
    pub fn open_on(
        data: &Path,
        store: StoreAt,
        catalogue: Catalogue,
        areas: Areas,
        clock: Clock,
        deadlines: Deadlines,
    ) -> Result<HubState, OpenError> {
        HubState::open_with(data, store, catalogue, areas, clock, deadlines, true)
    }

    /// Opens the store for `pingan-hub import` only: the rollups are neither loaded nor kept
    /// (the serving hub rebuilds them at start-up), so importing month after month does not
    /// pay for every month before it.
    pub fn open_for_import(
        data: &Path,
        store: StoreAt,
        catalogue: Catalogue,
        areas: Areas,
    ) -> Result<HubState, OpenError> {
        HubState::open_with(
            data,
            store,
            catalogue,
            areas,
            Clock::System,
            Deadlines::default(),
            false,
        )
    }

    fn open_with(
        data: &Path,
        store: StoreAt,
        catalogue: Catalogue,
        areas: Areas,
        clock: Clock,
        deadlines: Deadlines,
        rollups: bool,
    ) -> Result<HubState, OpenError> {
        let (catalogue, areas) = (Arc::new(catalogue), Arc::new(areas));
        let engine = Arc::new(Engine::new(
            catalogue.clone(),
            areas.clone(),
            deadlines,
            Engine::default_reporting_levels(),
        ));
        let (hook_engine, forward) = (engine.clone(), Arc::new(Dirty::default()));
        let hook_forward = forward.clone();
        let hook: Option<crate::store::CommitHook> = rollups.then(|| {
            Arc::new(move |committed: &[_]| {
                // the reports are stored whatever happens here: a failure to roll them up (a
                // bug) must not take the store's writer, and every later receipt, down
                let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    hook_engine.apply(committed)
                }));
                if applied.is_err() {
                    hook_engine.distrust();
                    tracing::error!(
                        reports = committed.len(),
                        "rolling up a committed group failed; the reports are stored and acked, the rollups are rebuilt from the store at the next start"
                    );
                }
                hook_forward.mark(committed);
            }) as _
        });
        let store = Store::open_at(data, store, hook)?;
        check_catalogue_keeps(&store, &catalogue)?;
        let owners = Arc::new(Owners::load(&store)?);
        if rollups {
            let loaded = engine.load(
                store.at().clone(),
                Some(data.join(crate::query::snapshot::FILE)),
            )?;
            tracing::info!(
                from_snapshot = loaded.unchanged.len(),
                rebuilt = loaded.rebuilt.len(),
                revisions = loaded.revisions,
                "rollups loaded"
            );
        }
        Ok(HubState {
            catalogue,
            areas,
            departments: Arc::default(),
            store: Arc::new(store),
            engine,
            clock,
            auth: Arc::new(Authorizer::insecure()),
            owners,
            forward,
            gate: Arc::default(),
            reminders: None,
            boundaries: Arc::default(),
        })
    }

    /// The same hub with these access rules (mutual TLS, grants).
    pub fn with_auth(mut self, auth: Authorizer) -> HubState {
        self.auth = Arc::new(auth);
        self
    }

    /// The same hub sending reminders (催报) this way.
    pub fn with_reminders(mut self, cfg: crate::remind::RemindConfig) -> HubState {
        self.reminders = Some(Arc::new(cfg));
        self
    }

    /// The same hub drawing these boundaries on its dashboard's map (`serve --boundaries`).
    pub fn with_boundaries(mut self, b: crate::web::boundaries::Boundaries) -> HubState {
        self.boundaries = Arc::new(b);
        self
    }

    /// The same hub taking these departments' reports (`serve --departments`).
    pub fn with_departments(mut self, departments: Departments) -> HubState {
        self.departments = Arc::new(departments);
        self.engine.set_departments(self.departments.clone());
        self
    }

    /// An approval (审核通过) of (area, period) was stored: forwarding approved figures only,
    /// its record goes up again.
    pub fn forward_approved(&self, area: pingan_domain::AreaCode, period: pingan_domain::Period) {
        self.forward.mark_approved(area, period);
    }

    /// A lock or unlock (锁定) of `period` was stored: forwarding, every record of the period
    /// goes up again with what is final now.
    pub fn forward_locks_changed(&self, period: pingan_domain::Period) {
        self.forward.mark_period(period, &self.areas);
    }

    /// What forwarding to a parent hub reads from this hub.
    pub fn forwarding(&self) -> forward::Sources {
        forward::Sources {
            engine: self.engine.clone(),
            areas: self.areas.clone(),
            dirty: self.forward.clone(),
            store: self.store.clone(),
            catalogue: self.catalogue.clone(),
            clock: self.clock.clone(),
        }
    }

    /// A validator for "now" on the hub's own clock: the hub, not the node, decides whether a
    /// period has ended.
    pub fn validator(&self) -> Validator<'_> {
        Validator {
            catalogue: &self.catalogue,
            areas: Some(&self.areas),
            today: self.clock.today(),
            departments: Some(&self.departments),
        }
    }
}
