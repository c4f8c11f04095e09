//! `rpm-ostree-fleetlock`: the FleetLock server on etcd v3 and its admin commands; all the
//! work is in the library ([`fleetlock::cli::run`]).

fn main() -> std::process::ExitCode {
    fleetlock::cli::run()
}
