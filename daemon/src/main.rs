//! The `vakt` binary: parses arguments and hands over to the library.

fn main() -> std::process::ExitCode {
    vakt::cli::main()
}
