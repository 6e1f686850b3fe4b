//! `IAAS_DISPATCH`: how the gateway hands invocations to functions (`local`, OpenFaaS, Lambda).

use crate::ConfigError;

/// Which backend `IAAS_DISPATCH` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DispatchTarget {
    Local,
    OpenFaas { gateway: String },
    Lambda { prefix: String },
}

impl DispatchTarget {
    pub fn parse(value: &str) -> Result<DispatchTarget, ConfigError> {
        let bad = || {
            ConfigError::new(
                "IAAS_DISPATCH",
                format!("{value:?} is not a dispatch backend"),
                "Use local, openfaas:<gateway-url> (e.g. openfaas:http://gateway.openfaas:8080) or lambda[:<function-name-prefix>].",
            )
        };
        match value.split_once(':') {
            None if value == "local" => Ok(DispatchTarget::Local),
            None if value == "lambda" => Ok(DispatchTarget::Lambda { prefix: String::new() }),
            Some(("openfaas", url)) if url.starts_with("http://") || url.starts_with("https://") => {
                Ok(DispatchTarget::OpenFaas { gateway: url.trim_end_matches('/').to_string() })
            }
            Some(("lambda", prefix)) => Ok(DispatchTarget::Lambda { prefix: prefix.to_string() }),
            _ => Err(bad()),
        }
    }
}
