//! Map boundaries (`serve --boundaries DIR`): GeoJSON a deployment supplies, one or more
//! FeatureCollection files whose features carry the division code (`properties.code`, or
//! `adcode` / `区划代码`). The dashboard draws the children of the area shown as a choropleth of
//! the metric picked; an area none of whose children has a boundary has no map, and no error.

use std::{collections::HashMap, path::Path};

use pingan_domain::{AreaCode, Areas};
use serde_json::{Value, json};

/// Boundaries by division code.
#[derive(Debug, Default)]
pub struct Boundaries {
    by_code: HashMap<AreaCode, Value>,
}

impl Boundaries {
    /// Every `.json`/`.geojson` file of `dir`: their features with a code of the registry and a
    /// polygon. Files that do not read are refused with the file named; features of codes not
    /// in the registry are left out (counted in the log).
    pub fn load_dir(dir: &Path, areas: &Areas) -> anyhow::Result<Boundaries> {
        let mut by_code = HashMap::new();
        let mut unknown = 0usize;
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| anyhow::anyhow!("--boundaries {}: {e}", dir.display()))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.extension()
                    .and_then(|x| x.to_str())
                    .is_some_and(|x| x == "json" || x == "geojson")
            })
            .collect();
        entries.sort();
        for path in entries {
            let text =
                std::fs::read(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let doc: Value = serde_json::from_slice(&text)
                .map_err(|e| anyhow::anyhow!("{}: 不是 GeoJSON：{e}", path.display()))?;
            let features = doc["features"].as_array().ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: 不是 GeoJSON FeatureCollection（没有 features）",
                    path.display()
                )
            })?;
            for f in features {
                let props = &f["properties"];
                let code = ["code", "adcode", "区划代码"]
                    .iter()
                    .find_map(|k| match &props[*k] {
                        Value::String(s) => Some(s.clone()),
                        Value::Number(n) => Some(n.to_string()),
                        _ => None,
                    });
                let polygon = matches!(
                    f["geometry"]["type"].as_str(),
                    Some("Polygon" | "MultiPolygon")
                );
                match code.and_then(|c| c.parse::<AreaCode>().ok()) {
                    Some(c) if polygon && areas.get(c).is_some() => {
                        let mut feature = f.clone();
                        feature["properties"] =
                            json!({"code": c.to_string(), "name": areas.name(c)});
                        by_code.insert(c, feature);
                    }
                    _ => unknown += 1,
                }
            }
        }
        tracing::info!(areas = by_code.len(), left_out = unknown, dir = %dir.display(), "map boundaries loaded");
        Ok(Boundaries { by_code })
    }

    /// How many areas have a boundary.
    pub fn len(&self) -> usize {
        self.by_code.len()
    }

    /// Whether no area has one.
    pub fn is_empty(&self) -> bool {
        self.by_code.is_empty()
    }

    /// The children of `area` that have boundaries, as one FeatureCollection (`properties.code`
    /// and `.name` on each); none when no child has one.
    pub fn children_of(&self, area: AreaCode, areas: &Areas) -> Option<Value> {
        let features: Vec<&Value> = areas
            .children(area)
            .iter()
            .filter_map(|c| self.by_code.get(c))
            .collect();
        (!features.is_empty()).then(|| json!({"type": "FeatureCollection", "features": features}))
    }
}
