use std::io::Write;

use clap::Parser;
use clap::error::ErrorKind;

fn main() {
    callquota::adapters::trace::start();
    // `callquota log --json | head -1`: end quietly when the reader goes away,
    // like any Unix filter, instead of panicking on a closed stdout.
    // SAFETY: called first, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // A full disk or a closed terminal behind stdout makes `println!` panic:
    // say so in one line, with exit 1, instead of a backtrace.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if let Some(cause) = message.strip_prefix("failed printing to stdout: ") {
            let fix = if cause.contains("No space left") || cause.contains("quota") {
                "free space where it goes, or send it elsewhere"
            } else {
                "send it to a file or a terminal that accepts it"
            };
            // Never a second panic here, should stderr be gone too.
            let _ = writeln!(std::io::stderr(), "callquota: cannot write the output: {cause}; {fix}");
            std::process::exit(callquota::exit::FAILURE);
        }
        default_hook(info);
    }));
    let cli = match callquota::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() || e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
        Err(e) => {
            // clap's first paragraph names the problem; keep errors to one line.
            let rendered = e.render().to_string();
            let problem = rendered.split("\n\n").next().unwrap_or("invalid command line");
            let problem = problem.split_whitespace().collect::<Vec<_>>().join(" ");
            eprintln!("callquota: {}; see --help", problem.trim_start_matches("error: "));
            std::process::exit(callquota::exit::USAGE);
        }
    };
    let code = match callquota::commands::dispatch(cli) {
        Ok(()) => callquota::exit::OK,
        Err(error) => {
            // One line: the whole context chain, never a backtrace.
            // Outside text in it (Asterisk's or a server's reply) is shown escaped.
            let message = format!("{error:#}").replace(['\n', '\r'], " ");
            eprintln!("callquota: {}", callquota::values::text::escape_controls(&message));
            callquota::exit::code_for(&error)
        }
    };
    callquota::adapters::trace::mark("exit");
    std::process::exit(code);
}
