//! Core module -> component, and what a component imports and exports.
//!
//! The host refuses a policy that imports anything but Trunkline's own
//! interfaces; checking here too means a policy that accidentally pulls in
//! an import fails at build time with the import's name, not at load time
//! in production.

use anyhow::{Context, Result, bail};
use wasmparser::{ComponentTypeRef, Encoding, Parser, Payload};

/// The prefix of every interface a policy may import.
pub const ALLOWED_IMPORT_PREFIX: &str = "trunkline:policy/";

/// The functions every policy component must export.
pub const REQUIRED_EXPORTS: [&str; 2] = ["route", "conclude"];

/// Turns a core module built with the guest SDK into a component, using
/// the WIT metadata `wit-bindgen` embedded in it, and validates the result.
pub fn componentize(core_module: &[u8]) -> Result<Vec<u8>> {
    wit_component::ComponentEncoder::default()
        .module(core_module)
        .context("reading the WIT metadata of the core module (was it built with the guest SDK?)")?
        .validate(true)
        .encode()
        .context("encoding the component")
}

/// The top-level import and export names of a component.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Import names of instances and functions, e.g.
    /// `trunkline:policy/log@0.1.0`, in order. Type imports (the world's
    /// `use types.{call, ...}` names such as `call`) are left out: they
    /// only name types of imported interfaces and need nothing from the
    /// host.
    pub imports: Vec<String>,
    /// Export names, e.g. `route`, in order.
    pub exports: Vec<String>,
}

/// Reads the top-level imports and exports of a component; an error when
/// `bytes` is a core module or not Wasm at all.
pub fn interface(bytes: &[u8]) -> Result<Interface> {
    let mut interface = Interface::default();
    // Nested modules and components have their own imports; only the outer
    // component's (depth 1) are what the host must provide.
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.context("parsing the component")? {
            Payload::Version { encoding, .. } => {
                if depth == 0 && encoding != Encoding::Component {
                    bail!("this is a core Wasm module, not a component");
                }
                depth += 1;
            }
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 1 => {
                for import in reader {
                    let import = import?;
                    if !matches!(import.ty, ComponentTypeRef::Type(_)) {
                        interface.imports.push(import.name.name.to_owned());
                    }
                }
            }
            Payload::ComponentExportSection(reader) if depth == 1 => {
                for export in reader {
                    interface.exports.push(export?.name.name.to_owned());
                }
            }
            _ => {}
        }
    }
    Ok(interface)
}

/// Checks that a policy component imports only `trunkline:policy/*` and
/// exports `route` and `conclude`, naming what is wrong otherwise.
pub fn check_policy(bytes: &[u8]) -> Result<Interface> {
    let interface = interface(bytes)?;
    let foreign: Vec<&str> = interface
        .imports
        .iter()
        .map(String::as_str)
        .filter(|name| !name.starts_with(ALLOWED_IMPORT_PREFIX))
        .collect();
    if !foreign.is_empty() {
        bail!(
            "imports {} outside {ALLOWED_IMPORT_PREFIX}*; the host refuses such policies",
            foreign.join(", ")
        );
    }
    for required in REQUIRED_EXPORTS {
        if !interface.exports.iter().any(|e| e == required) {
            bail!("does not export `{required}` (missing `export_policy!`?)");
        }
    }
    Ok(interface)
}

/// How many times `needle` occurs in `haystack` (overlaps counted).
pub fn count_occurrences(haystack: &[u8], needle: &[u8]) -> usize {
    if needle.is_empty() {
        return 0;
    }
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A component importing each of `imports` as an empty instance and
    /// exporting nothing.
    fn component_importing(imports: &[&str]) -> Vec<u8> {
        let mut types = wasm_encoder::ComponentTypeSection::new();
        types.instance(&wasm_encoder::InstanceType::new());
        let mut section = wasm_encoder::ComponentImportSection::new();
        for name in imports {
            section.import(*name, wasm_encoder::ComponentTypeRef::Instance(0));
        }
        let mut component = wasm_encoder::Component::new();
        component.section(&types);
        component.section(&section);
        component.finish()
    }

    #[test]
    fn foreign_imports_are_named() {
        let bytes =
            component_importing(&["trunkline:policy/log@0.1.0", "wasi:cli/environment@0.2.6"]);
        let i = interface(&bytes).unwrap();
        assert_eq!(i.imports.len(), 2);
        let err = check_policy(&bytes).unwrap_err().to_string();
        assert!(err.contains("wasi:cli/environment@0.2.6"), "{err}");
        assert!(!err.contains("trunkline:policy/log"), "{err}");
    }

    #[test]
    fn missing_exports_are_named() {
        let bytes = component_importing(&["trunkline:policy/config@0.1.0"]);
        let err = check_policy(&bytes).unwrap_err().to_string();
        assert!(err.contains("`route`"), "{err}");
    }

    #[test]
    fn core_modules_and_garbage_are_refused() {
        let core = wasm_encoder::Module::new().finish();
        assert!(
            interface(&core)
                .unwrap_err()
                .to_string()
                .contains("core Wasm module")
        );
        assert!(interface(b"not wasm").is_err());
        // A module without the SDK's metadata encodes to an empty
        // component, which the policy check then refuses.
        let empty = componentize(&core).unwrap();
        let err = check_policy(&empty).unwrap_err().to_string();
        assert!(err.contains("`route`"), "{err}");
    }

    #[test]
    fn occurrences() {
        assert_eq!(count_occurrences(b"abcabc", b"abc"), 2);
        assert_eq!(count_occurrences(b"aaa", b"aa"), 2);
        assert_eq!(count_occurrences(b"abc", b""), 0);
        assert_eq!(count_occurrences(b"ab", b"abc"), 0);
    }
}
