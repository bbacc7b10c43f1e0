//! What an seL4 install prefix says of the kernel the loader starts (feature `prefix`, for
//! the EFI loader's build script and `vmmctl boot-layout`): `bin/kernel.elf`, the
//! configuration (`libsel4/include/kernel/gen_config.json`) and the memory the kernel was
//! built to use (`support/platform_gen.json`).

use std::format;
use std::path::{Path, PathBuf};
use std::string::{String, ToString};
use std::vec::Vec;

use crate::PhysRange;

/// The parts of a prefix the loader needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sel4Prefix {
    /// `bin/kernel.elf`.
    pub kernel: PathBuf,
    /// seL4's platform name (`PLAT`).
    pub plat: String,
    /// Cores the kernel is built for (`MAX_NUM_NODES`).
    pub cores: usize,
    /// Physical address bits (40 or 44).
    pub pa_bits: u8,
    /// The kernel's memory.
    pub memory: Vec<PhysRange>,
    /// The files read, for build scripts' `rerun-if-changed`.
    pub files: Vec<PathBuf>,
}

fn json(path: &Path) -> Result<serde_json::Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

impl Sel4Prefix {
    /// Reads the prefix at `dir`; the error names the file and what is wrong.
    pub fn read(dir: &Path) -> Result<Self, String> {
        let kernel = dir.join("bin/kernel.elf");
        if !kernel.is_file() {
            return Err(format!("{}: no such file", kernel.display()));
        }
        let config_path = dir.join("libsel4/include/kernel/gen_config.json");
        let plat_path = dir.join("support/platform_gen.json");
        let config = json(&config_path)?;
        let flag = |k: &str| config.get(k).and_then(|v| v.as_bool()).unwrap_or(false);
        let bad = |what: &str| format!("{}: {what}", config_path.display());
        if !flag("ARM_HYPERVISOR_SUPPORT") {
            return Err(bad(
                "not built for hypervisor mode (KernelArmHypervisorSupport)",
            ));
        }
        let cores = config
            .get("MAX_NUM_NODES")
            .and_then(|v| {
                v.as_str()
                    .and_then(|s| s.parse().ok())
                    .or(v.as_u64().and_then(|n| usize::try_from(n).ok()))
            })
            .ok_or_else(|| bad("no MAX_NUM_NODES"))?;
        let pa_bits = if flag("ARM_PA_SIZE_BITS_40") {
            40
        } else if flag("ARM_PA_SIZE_BITS_44") {
            44
        } else {
            return Err(bad("neither ARM_PA_SIZE_BITS_40 nor ARM_PA_SIZE_BITS_44"));
        };
        let plat = config
            .get("PLAT")
            .and_then(|v| v.as_str())
            .unwrap_or("?")
            .to_string();
        let memory = json(&plat_path)?
            .get("memory")
            .and_then(|m| m.as_array().cloned())
            .ok_or_else(|| format!("{}: no memory", plat_path.display()))?
            .iter()
            .map(|r| {
                let field = |k: &str| r.get(k).and_then(|v| v.as_u64());
                match (field("start"), field("end")) {
                    (Some(s), Some(e)) => Ok(PhysRange::new(s, e)),
                    _ => Err(format!(
                        "{}: a memory entry without start/end",
                        plat_path.display()
                    )),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Sel4Prefix {
            kernel: kernel.clone(),
            plat,
            cores,
            pa_bits,
            memory,
            files: Vec::from([kernel, config_path, plat_path]),
        })
    }
}
