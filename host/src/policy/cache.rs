//! Compiled components cached on disk by content hash, so a restart or a
//! reload of a file seen before skips Cranelift.
//!
//! The key is the component's SHA-256 plus the engine's compatibility hash
//! (wasmtime version and every code-generation setting), so an artifact is
//! only ever read back by an engine that produced an identical one.
//! Failures here are never fatal: the component is compiled instead.

use std::hash::{Hash, Hasher};
use std::path::PathBuf;

use wasmtime::Engine;
use wasmtime::component::Component;

pub(crate) struct ArtifactCache {
    dir: PathBuf,
    engine: Engine,
    engine_key: String,
}

impl ArtifactCache {
    pub(crate) fn new(dir: PathBuf, engine: &Engine) -> ArtifactCache {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        ArtifactCache {
            dir,
            engine: engine.clone(),
            engine_key: format!("{:016x}", h.finish()),
        }
    }

    fn path(&self, hash: &str) -> PathBuf {
        self.dir.join(format!("{hash}-{}.cwasm", self.engine_key))
    }

    pub(crate) fn get(&self, hash: &str) -> Option<Component> {
        let path = self.path(hash);
        if !path.is_file() {
            return None;
        }
        // SAFETY: `deserialize_file` trusts the file to be an artifact that
        // this engine configuration produced. Only `put` below writes this
        // folder (via rename, so never half-written), names carry the
        // engine's compatibility hash, and the operator docs require the
        // folder to be writable only by Trunkline's user.
        match unsafe { Component::deserialize_file(&self.engine, &path) } {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %format!("{e:#}"),
                    "ignoring unreadable compiled-policy cache entry");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    pub(crate) fn put(&self, hash: &str, component: &Component) {
        let result = (|| -> Result<(), String> {
            std::fs::create_dir_all(&self.dir).map_err(|e| e.to_string())?;
            let bytes = component.serialize().map_err(|e| format!("{e:#}"))?;
            let tmp = self.dir.join(format!(".{hash}.{}.tmp", std::process::id()));
            std::fs::write(&tmp, &bytes).map_err(|e| e.to_string())?;
            std::fs::rename(&tmp, self.path(hash)).map_err(|e| e.to_string())
        })();
        if let Err(e) = result {
            tracing::warn!(dir = %self.dir.display(), error = %e,
                "cannot write the compiled-policy cache; policies still load, but are recompiled after a restart");
        }
    }
}
