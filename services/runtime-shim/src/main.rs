//! `berth-shim start --bundle DIR` | `berth-shim delete --bundle DIR` | `berth-shim probe rro`
//! | `berth-shim --version`.

use std::path::PathBuf;

const USAGE: &str =
    "usage: berth-shim start --bundle DIR | berth-shim delete --bundle DIR | berth-shim probe rro";

fn bundle_arg(args: &[String]) -> Option<PathBuf> {
    match args {
        [flag, dir] if flag == "--bundle" => Some(PathBuf::from(dir)),
        [flag] => flag.strip_prefix("--bundle=").map(PathBuf::from),
        _ => None,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r),
        None => ("", &[][..]),
    };
    if cmd == "--version" {
        println!("berth-shim {}", env!("CARGO_PKG_VERSION"));
        return;
    }
    if cmd == "probe" && rest == ["rro"] {
        // Nothing on success; why not on stderr.
        if let Err(why) = berth_shim::probe::recursive_read_only() {
            eprintln!("{why}");
            std::process::exit(1);
        }
        return;
    }
    let Some(bundle) = bundle_arg(rest) else {
        eprintln!("{USAGE}");
        std::process::exit(2);
    };
    match cmd {
        "start" => match berth_shim::start::start(&bundle) {
            Ok(address) => println!("{address}"),
            Err(e) => {
                eprintln!("berth-shim: {} ({})", e.message, e.kind.as_str());
                std::process::exit(e.kind.exit_code());
            }
        },
        "delete" => match berth_shim::cleanup::delete(&bundle) {
            Ok(status) => println!("{}", serde_json::to_string(&status).unwrap_or_default()),
            Err(e) => {
                eprintln!("berth-shim: {}", e.chain());
                std::process::exit(1);
            }
        },
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    }
}
