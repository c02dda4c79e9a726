// The write path allocates many small strings per point; mimalloc keeps that cheap and
// returns memory to the system better than glibc's allocator under this load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    shardkeeper::cli::main()
}
