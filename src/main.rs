fn main() -> std::process::ExitCode {
    shardkeeper::cli::main()
}
