use clap::Parser;

fn main() {
    // clap prints its own usage errors and exits 2.
    let cli = callquota::cli::Cli::parse();
    let code = match callquota::commands::dispatch(cli) {
        Ok(()) => callquota::exit::OK,
        Err(error) => {
            // One line: the whole context chain, never a backtrace.
            let message = format!("{error:#}").replace(['\n', '\r'], " ");
            eprintln!("callquota: {message}");
            callquota::exit::code_for(&error)
        }
    };
    std::process::exit(code);
}
