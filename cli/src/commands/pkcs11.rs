//! `signet pkcs11 tokens` and `signet pkcs11 keys`: what a PKCS#11 module offers, and the
//! `pkcs11:` URI of each key (cosign's `pkcs11-tool list-tokens` / `list-keys-uris`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use signet_pkcs11::{KeyClass, Module, Pkcs11Error, Pkcs11Uri};

use crate::cli::Output;
use crate::commands::signer::{default_module, pin};

fn load(module: Option<&Path>) -> anyhow::Result<Module> {
    let path: PathBuf = module
        .map(Path::to_path_buf)
        .or_else(default_module)
        .ok_or(Pkcs11Error::NoModule)
        .context("give --module PATH")?;
    Ok(Module::load(&path)?)
}

/// `signet pkcs11 tokens`.
pub fn tokens(module: Option<&Path>, output: Output) -> anyhow::Result<ExitCode> {
    let module = load(module)?;
    let tokens = module.tokens()?;
    match output {
        Output::Json => {
            let list: Vec<serde_json::Value> = tokens
                .iter()
                .map(|t| {
                    serde_json::json!({
                        "slot": t.slot_id,
                        "slotDescription": t.slot_description,
                        "label": t.label,
                        "manufacturer": t.manufacturer,
                        "model": t.model,
                        "serial": t.serial,
                        "initialized": t.initialized,
                        "loginRequired": t.login_required,
                        "pinLocked": t.pin_locked,
                    })
                })
                .collect();
            crate::output::line(&serde_json::to_string_pretty(&list)?);
        }
        Output::Text => {
            let mut out = format!("{} token(s) in {}\n", tokens.len(), module.path().display());
            for t in &tokens {
                out.push_str(&format!(
                    "slot {}: token \"{}\" serial {} ({} {}){}{}\n",
                    t.slot_id,
                    t.label,
                    t.serial,
                    t.manufacturer,
                    t.model,
                    if t.initialized {
                        ""
                    } else {
                        ", not initialised"
                    },
                    if t.pin_locked { ", PIN locked" } else { "" },
                ));
            }
            crate::output::stdout(&out);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `signet pkcs11 keys --token T`.
pub fn keys(module: Option<&Path>, token: &str, output: Output) -> anyhow::Result<ExitCode> {
    let module = load(module)?;
    let selector = Pkcs11Uri {
        token: Some(token.to_string()),
        ..Pkcs11Uri::default()
    };
    let asked = std::cell::Cell::new(false);
    let (token, keys) = module
        .keys(&selector, &|t| {
            let pin = pin(t);
            asked.set(pin.is_some());
            pin
        })
        .with_context(|| format!("listing the keys of token \"{token}\""))?;
    if token.login_required && !asked.get() {
        eprintln!(
            "no PIN (set SIGNET_PKCS11_PIN, or run on a terminal): private keys of token \"{}\" \
             are not listed",
            token.label
        );
    }
    match output {
        Output::Json => {
            let list: Vec<serde_json::Value> = keys
                .iter()
                .map(|k| {
                    serde_json::json!({
                        "class": match k.class {
                            KeyClass::Private => "private",
                            _ => "public",
                        },
                        "label": k.label,
                        "id": k.id_hex(),
                        "type": k.key_type,
                        "sensitive": k.sensitive,
                        "extractable": k.extractable,
                        "uri": (!k.uri.is_empty()).then_some(&k.uri),
                    })
                })
                .collect();
            crate::output::line(&serde_json::to_string_pretty(&list)?);
        }
        Output::Text => {
            let mut out = format!(
                "{} key object(s) in token \"{}\" (serial {})\n",
                keys.len(),
                token.label,
                token.serial
            );
            for k in &keys {
                let class = match k.class {
                    KeyClass::Private => "private",
                    _ => "public",
                };
                let mut flags = Vec::new();
                match k.sensitive {
                    Some(true) => flags.push("sensitive"),
                    Some(false) => flags.push("NOT sensitive"),
                    None => {}
                }
                match k.extractable {
                    Some(false) => flags.push("non-extractable"),
                    Some(true) => flags.push("EXTRACTABLE"),
                    None => {}
                }
                out.push_str(&format!(
                    "{class} key \"{}\" id {} {}{}\n",
                    k.label,
                    if k.id.is_empty() {
                        "(none)".to_string()
                    } else {
                        k.id_hex()
                    },
                    k.key_type,
                    if flags.is_empty() {
                        String::new()
                    } else {
                        format!(" [{}]", flags.join(", "))
                    },
                ));
                if !k.uri.is_empty() {
                    out.push_str(&format!("  {}\n", k.uri));
                }
            }
            crate::output::stdout(&out);
        }
    }
    Ok(ExitCode::SUCCESS)
}
