//! The `dialer` binary: everything lives in the library; this only runs the CLI.

fn main() -> std::process::ExitCode {
    match dialer::cli::main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
