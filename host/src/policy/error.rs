//! What can go wrong with a policy, at load time and at decision time.

/// Why a component could not become a serving policy version. The previous
/// version (if any) keeps serving.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The engine itself could not be set up (a host problem, not the file's).
    #[error("policy engine: {0}")]
    Engine(String),
    /// The file could not be read.
    #[error("cannot read policy file: {0}")]
    Io(String),
    /// The file does not start with the WebAssembly magic bytes (empty,
    /// truncated or not Wasm at all).
    #[error("not a WebAssembly file (bad magic bytes); is it still being copied?")]
    NotWasm,
    /// The file is a core Wasm module, not a component.
    #[error(
        "not a component: build it with `cargo xtask policies` (or wit-component) from a core module: {0}"
    )]
    NotComponent(String),
    /// The component failed validation or compilation.
    #[error("invalid component: {0}")]
    Invalid(String),
    /// The component imports interfaces outside the Trunkline world.
    #[error(
        "forbidden import(s): {}; a policy may import only trunkline:policy/* (log, config, types)",
        .0.join(", ")
    )]
    ForbiddenImports(Vec<String>),
    /// The component's imports do not match what the host provides (e.g. a
    /// different version of the Trunkline world).
    #[error("cannot link: {0}")]
    Link(String),
    /// The component does not export `route` and `conclude` with the
    /// expected types.
    #[error("missing or mismatched exports (route, conclude): {0}")]
    Exports(String),
}

impl LoadError {
    /// A short label for counters and the status API.
    pub fn kind(&self) -> &'static str {
        match self {
            LoadError::Engine(_) => "engine",
            LoadError::Io(_) => "io",
            LoadError::NotWasm => "not-wasm",
            LoadError::NotComponent(_) => "not-component",
            LoadError::Invalid(_) => "invalid",
            LoadError::ForbiddenImports(_) => "forbidden-import",
            LoadError::Link(_) => "link",
            LoadError::Exports(_) => "exports",
        }
    }
}

/// Why a decision did not produce a usable answer. Every variant leads to
/// the trunk's fallback; none ends the process.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionError {
    /// No policy of the configured name is loaded.
    #[error("policy `{0}` is not loaded")]
    NotLoaded(String),
    /// The instance could not be created (e.g. the instance pool is full).
    #[error("cannot instantiate: {0}")]
    Instantiate(String),
    /// The guest trapped (panic, unreachable, out of bounds...).
    #[error("trap: {0}")]
    Trap(String),
    /// The decision ran past its deadline and was interrupted.
    #[error("deadline of {0} ms exceeded")]
    Deadline(u64),
    /// The guest tried to grow its memory past the cap.
    #[error("memory cap exceeded: {0}")]
    MemoryCap(String),
    /// The answer broke the contract (e.g. status 200 as a rejection, a
    /// header name that is not a token, CR/LF in a value).
    #[error("invalid answer: {0}")]
    Invalid(String),
}

impl DecisionError {
    /// A short label for counters and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            DecisionError::NotLoaded(_) => "not-loaded",
            DecisionError::Instantiate(_) => "instantiate",
            DecisionError::Trap(_) => "trap",
            DecisionError::Deadline(_) => "deadline",
            DecisionError::MemoryCap(_) => "memory",
            DecisionError::Invalid(_) => "invalid",
        }
    }
}
