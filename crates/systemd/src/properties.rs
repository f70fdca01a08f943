//! The properties of a container's transient scope, as runc's systemd managers send them:
//! what systemd needs to own the scope (its slice, the container's init as its one PID,
//! `Delegate` so the limits below it are the engine's), accounting on, and the limits systemd
//! itself writes into the controllers it manages, so that its values agree with the ones the
//! engine writes through cgroupfs afterwards.

use berth_bundle::{DeviceRule, Resources};
use zbus::zvariant::Value;

use crate::Error;

/// One property's value, in the D-Bus type systemd expects for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prop {
    Bool(bool),
    U64(u64),
    Str(String),
    /// `au`: the scope's PIDs.
    Pids(Vec<u32>),
    /// `ay`: a CPU or memory node bitmask.
    Bytes(Vec<u8>),
    /// `a(ss)`: `DeviceAllow`'s (device, permissions) entries.
    DeviceAllow(Vec<(String, String)>),
}

impl Prop {
    /// The value as it goes over D-Bus.
    pub fn to_value(&self) -> Value<'_> {
        match self {
            Prop::Bool(b) => Value::from(*b),
            Prop::U64(n) => Value::from(*n),
            Prop::Str(s) => Value::from(s.as_str()),
            Prop::Pids(p) => Value::from(p.clone()),
            Prop::Bytes(b) => Value::from(b.clone()),
            Prop::DeviceAllow(d) => Value::from(d.clone()),
        }
    }

    /// The value as received over D-Bus; None for a type no property here has.
    pub fn from_value(v: &Value<'_>) -> Option<Prop> {
        Some(match v {
            Value::Bool(b) => Prop::Bool(*b),
            Value::U64(n) => Prop::U64(*n),
            Value::Str(s) => Prop::Str(s.as_str().to_owned()),
            Value::Array(a) => match a.element_signature().to_string().as_str() {
                "u" => Prop::Pids(a.iter().map(u32::try_from).collect::<Result<_, _>>().ok()?),
                "y" => Prop::Bytes(a.iter().map(u8::try_from).collect::<Result<_, _>>().ok()?),
                "(ss)" => Prop::DeviceAllow(
                    a.iter()
                        .map(|e| <(String, String)>::try_from(e.try_clone().ok()?).ok())
                        .collect::<Option<_>>()?,
                ),
                _ => return None,
            },
            _ => return None,
        })
    }
}

/// The transient scope of container `id`: its init `pid` in `slice`, with the limits of `r`
/// and the device rules `devices`; `unified`: the host's cgroups are v2 (systemd's v2
/// property names). Fails on a device rule systemd cannot express.
pub fn scope_properties(
    id: &str,
    slice: &str,
    pid: u32,
    r: &Resources,
    devices: &[DeviceRule],
    unified: bool,
) -> Result<Vec<(&'static str, Prop)>, Error> {
    let mut p = vec![
        ("Description", Prop::Str(format!("berth container {id}"))),
        ("Slice", Prop::Str(slice.to_owned())),
        ("Delegate", Prop::Bool(true)),
        ("PIDs", Prop::Pids(vec![pid])),
        ("MemoryAccounting", Prop::Bool(true)),
        ("CPUAccounting", Prop::Bool(true)),
        (
            if unified {
                "IOAccounting"
            } else {
                "BlockIOAccounting"
            },
            Prop::Bool(true),
        ),
        ("TasksAccounting", Prop::Bool(true)),
        ("DefaultDependencies", Prop::Bool(false)),
    ];
    p.extend(limit_properties(r, unified));
    p.extend(crate::devices::device_properties(devices)?);
    Ok(p)
}

/// The limits of `r` that systemd writes itself, by their systemd names (for the scope's
/// start, and for SetUnitProperties at `docker update`). Zero values are left out.
pub fn limit_properties(r: &Resources, unified: bool) -> Vec<(&'static str, Prop)> {
    let mut p = Vec::new();
    if unified {
        v2_limits(r, &mut p);
    } else {
        v1_limits(r, &mut p);
    }
    cpu_quota(r, &mut p);
    if let Some(n) = r.pids_limit.filter(|n| *n > 0) {
        p.push(("TasksMax", Prop::U64(n.unsigned_abs())));
    }
    p
}

fn v1_limits(r: &Resources, p: &mut Vec<(&'static str, Prop)>) {
    if r.memory > 0 {
        p.push(("MemoryLimit", Prop::U64(r.memory.unsigned_abs())));
    }
    if r.cpu_shares > 0 {
        p.push(("CPUShares", Prop::U64(r.cpu_shares)));
    }
    if r.blkio_weight > 0 {
        p.push(("BlockIOWeight", Prop::U64(u64::from(r.blkio_weight))));
    }
}

fn v2_limits(r: &Resources, p: &mut Vec<(&'static str, Prop)>) {
    if r.memory > 0 {
        p.push(("MemoryMax", Prop::U64(r.memory.unsigned_abs())));
    }
    if r.memory_reservation > 0 {
        p.push(("MemoryLow", Prop::U64(r.memory_reservation.unsigned_abs())));
    }
    // v1's memory+swap becomes v2's swap alone; -1 is unlimited.
    if r.memory_swap == -1 {
        p.push(("MemorySwapMax", Prop::U64(u64::MAX)));
    } else if r.memory > 0 && r.memory_swap >= r.memory {
        p.push((
            "MemorySwapMax",
            Prop::U64((r.memory_swap - r.memory).unsigned_abs()),
        ));
    }
    if r.cpu_shares > 0 {
        // The shares' 2..262144 onto the weight's 1..10000, as the kernel's docs map them.
        let weight = 1 + (r.cpu_shares.clamp(2, 262_144) - 2) * 9999 / 262_142;
        p.push(("CPUWeight", Prop::U64(weight)));
    }
    if r.blkio_weight > 0 {
        let weight = 1 + (u64::from(r.blkio_weight).clamp(10, 1000) - 10) * 9999 / 990;
        p.push(("IOWeight", Prop::U64(weight)));
    }
    for (list, name) in [
        (&r.cpuset_cpus, "AllowedCPUs"),
        (&r.cpuset_mems, "AllowedMemoryNodes"),
    ] {
        if let Some(mask) = bitmask(list) {
            p.push((name, Prop::Bytes(mask)));
        }
    }
}

/// `CPUQuotaPerSecUSec` (with its period): systemd keeps the quota as a percentage of a CPU,
/// so a quota that is not a whole percent is rounded up to the next 10 ms per second, which
/// leaves the shim's exact `cpu.cfs_quota_us` below it possible.
fn cpu_quota(r: &Resources, p: &mut Vec<(&'static str, Prop)>) {
    if r.cpu_quota == 0 && r.cpu_period == 0 {
        return;
    }
    let mut per_sec = u64::MAX;
    if r.cpu_quota > 0 {
        let period = if r.cpu_period == 0 {
            100_000
        } else {
            r.cpu_period
        };
        per_sec = r.cpu_quota.unsigned_abs().saturating_mul(1_000_000) / period;
        if per_sec % 10_000 != 0 {
            per_sec = (per_sec / 10_000 + 1) * 10_000;
        }
    }
    p.push(("CPUQuotaPerSecUSec", Prop::U64(per_sec)));
    if r.cpu_period > 0 {
        p.push(("CPUQuotaPeriodUSec", Prop::U64(r.cpu_period)));
    }
}

/// A cpuset list (`0-2,4`) as systemd's bitmask: byte i holds CPUs 8i to 8i+7, lowest bit
/// first. None for an empty or malformed list.
fn bitmask(list: &str) -> Option<Vec<u8>> {
    if list.is_empty() {
        return None;
    }
    let mut bits = Vec::new();
    for part in list.split(',') {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<usize>().ok()?, b.trim().parse().ok()?),
            None => {
                let n = part.trim().parse().ok()?;
                (n, n)
            }
        };
        if a > b || b >= 8192 {
            return None;
        }
        bits.extend(a..=b);
    }
    let mut mask = vec![0u8; bits.iter().max()? / 8 + 1];
    for b in bits {
        mask[b / 8] |= 1 << (b % 8);
    }
    Some(mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(p: &'a [(&'static str, Prop)], name: &str) -> Option<&'a Prop> {
        p.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    #[test]
    fn a_scope_of_its_own_with_v1_limits() {
        let r = Resources {
            memory: 64 << 20,
            cpu_shares: 512,
            cpu_period: 100_000,
            cpu_quota: 50_000,
            pids_limit: Some(50),
            blkio_weight: 300,
            ..Default::default()
        };
        let p = scope_properties("abc", "berth.slice", 42, &r, &[], false).unwrap();
        assert_eq!(
            get(&p, "Description"),
            Some(&Prop::Str("berth container abc".into()))
        );
        assert_eq!(get(&p, "Slice"), Some(&Prop::Str("berth.slice".into())));
        assert_eq!(get(&p, "Delegate"), Some(&Prop::Bool(true)));
        assert_eq!(get(&p, "PIDs"), Some(&Prop::Pids(vec![42])));
        assert_eq!(get(&p, "DefaultDependencies"), Some(&Prop::Bool(false)));
        assert_eq!(get(&p, "BlockIOAccounting"), Some(&Prop::Bool(true)));
        assert_eq!(get(&p, "MemoryLimit"), Some(&Prop::U64(64 << 20)));
        assert_eq!(get(&p, "CPUShares"), Some(&Prop::U64(512)));
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Prop::U64(500_000)));
        assert_eq!(get(&p, "CPUQuotaPeriodUSec"), Some(&Prop::U64(100_000)));
        assert_eq!(get(&p, "TasksMax"), Some(&Prop::U64(50)));
        assert_eq!(get(&p, "BlockIOWeight"), Some(&Prop::U64(300)));
        assert_eq!(get(&p, "MemoryMax"), None);
        assert_eq!(
            get(&p, "DevicePolicy"),
            Some(&Prop::Str("strict".into())),
            "no rule: nothing allowed"
        );
        // Nothing asked: no limit at all.
        let p =
            scope_properties("abc", "berth.slice", 42, &Resources::default(), &[], false).unwrap();
        assert_eq!(p.len(), 11);
        assert!(limit_properties(&Resources::default(), false).is_empty());
    }

    #[test]
    fn v2_names_and_conversions() {
        let r = Resources {
            memory: 64 << 20,
            memory_swap: 96 << 20,
            memory_reservation: 32 << 20,
            cpu_shares: 1024,
            blkio_weight: 500,
            cpuset_cpus: "0-2,9".into(),
            cpuset_mems: "0".into(),
            ..Default::default()
        };
        let p = scope_properties("abc", "x.slice", 7, &r, &[], true).unwrap();
        assert_eq!(get(&p, "IOAccounting"), Some(&Prop::Bool(true)));
        assert_eq!(get(&p, "MemoryMax"), Some(&Prop::U64(64 << 20)));
        assert_eq!(get(&p, "MemoryLow"), Some(&Prop::U64(32 << 20)));
        assert_eq!(get(&p, "MemorySwapMax"), Some(&Prop::U64(32 << 20)));
        assert_eq!(get(&p, "CPUWeight"), Some(&Prop::U64(39)));
        assert_eq!(get(&p, "IOWeight"), Some(&Prop::U64(4950)));
        assert_eq!(
            get(&p, "AllowedCPUs"),
            Some(&Prop::Bytes(vec![0b0000_0111, 0b0000_0010]))
        );
        assert_eq!(get(&p, "AllowedMemoryNodes"), Some(&Prop::Bytes(vec![1])));
        assert_eq!(get(&p, "MemoryLimit"), None);
    }

    #[test]
    fn a_fractional_percent_of_quota_rounds_up() {
        let r = Resources {
            cpu_period: 100_000,
            cpu_quota: 12_345,
            ..Default::default()
        };
        let p = limit_properties(&r, false);
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Prop::U64(130_000)));
        // A period alone: no quota.
        let r = Resources {
            cpu_period: 50_000,
            ..Default::default()
        };
        let p = limit_properties(&r, false);
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Prop::U64(u64::MAX)));
    }

    #[test]
    fn values_cross_the_wire_unchanged() {
        for v in [
            Prop::Bool(true),
            Prop::U64(5),
            Prop::Str("s".into()),
            Prop::Pids(vec![1, 2]),
            Prop::Bytes(vec![7]),
            Prop::DeviceAllow(vec![("char-*".into(), "m".into())]),
        ] {
            assert_eq!(Prop::from_value(&v.to_value()), Some(v));
        }
    }
}
