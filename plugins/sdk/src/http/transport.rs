//! The part that talks to the host (`wasi:http`).

use std::time::Duration;

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingBody, Method as WasiMethod, OutgoingBody, OutgoingRequest,
    RequestOptions, Scheme,
};
use wasip2::io::streams::StreamError;

use super::status::{Target, transport_error};
use super::{Method, Url};
use crate::PluginError;

pub(super) struct Outgoing<'a> {
    pub method: Method,
    pub url: &'a Url,
    pub headers: &'a [(String, String)],
    pub body: Option<&'a [u8]>,
    pub timeout: Option<Duration>,
    pub max_response_bytes: usize,
}

pub(super) struct Incoming {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

pub(super) fn send(req: &Outgoing<'_>) -> Result<Incoming, PluginError> {
    let url_text = req.url.display_without_query();
    let origin = req.url.origin();
    let target = Target {
        method: req.method.as_str(),
        url: &url_text,
        origin: &origin,
    };
    let at = format!("{} {}", req.method.as_str(), url_text);
    let failed = |code: &ErrorCode| transport_error(target, code);
    let bug = |what: &str| PluginError::permanent(format_args!("{at}: {what}"));

    let entries: Vec<(String, Vec<u8>)> = req
        .headers
        .iter()
        .map(|(n, v)| (n.clone(), v.as_bytes().to_vec()))
        .collect();
    let fields = Fields::from_list(&entries)
        .map_err(|e| bug(&format!("a request header was refused ({e:?}); headers that carry credentials are set by the daemon")))?;
    let request = OutgoingRequest::new(fields);
    request
        .set_method(&match req.method {
            Method::Get => WasiMethod::Get,
            Method::Post => WasiMethod::Post,
            Method::Put => WasiMethod::Put,
            Method::Patch => WasiMethod::Patch,
            Method::Delete => WasiMethod::Delete,
        })
        .map_err(|()| bug("invalid method"))?;
    let scheme = if req.url.scheme == "https" {
        Scheme::Https
    } else {
        Scheme::Http
    };
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| bug("invalid scheme"))?;
    request
        .set_authority(Some(&req.url.authority))
        .map_err(|()| bug("invalid host"))?;
    request
        .set_path_with_query(Some(&req.url.path_and_query))
        .map_err(|()| bug("invalid path"))?;

    let options = req.timeout.map(|t| {
        let options = RequestOptions::new();
        let ns = Some(u64::try_from(t.as_nanos()).unwrap_or(u64::MAX));
        // A host may not support a timeout; the call's deadline still holds.
        let _ = options.set_connect_timeout(ns);
        let _ = options.set_first_byte_timeout(ns);
        let _ = options.set_between_bytes_timeout(ns);
        options
    });

    let outgoing_body = request
        .body()
        .map_err(|()| bug("request body already taken"))?;
    let future = outgoing_handler::handle(request, options).map_err(|e| failed(&e))?;
    {
        let stream = outgoing_body
            .write()
            .map_err(|()| bug("request body stream already taken"))?;
        for chunk in req.body.unwrap_or_default().chunks(4096) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| match e {
                    StreamError::LastOperationFailed(e) => {
                        match wasip2::http::types::http_error_code(&e) {
                            Some(code) => failed(&code),
                            None => PluginError::retryable(format_args!(
                                "{at}: sending the body failed: {}",
                                e.to_debug_string()
                            )),
                        }
                    }
                    StreamError::Closed => PluginError::retryable(format_args!(
                        "{at}: the connection closed while sending the body"
                    )),
                })?;
        }
        // The stream is a child of the body: drop it before finishing.
    }
    OutgoingBody::finish(outgoing_body, None).map_err(|e| failed(&e))?;

    let response = {
        let pollable = future.subscribe();
        pollable.block();
        match future.get() {
            Some(Ok(Ok(response))) => response,
            Some(Ok(Err(code))) => return Err(failed(&code)),
            Some(Err(())) | None => return Err(bug("the response was already taken")),
        }
    };
    let status = response.status();
    let headers = response.headers().entries();
    let incoming = response
        .consume()
        .map_err(|()| bug("response body already taken"))?;
    let body = read_body(&incoming, req.max_response_bytes, &at, &failed)?;
    let _trailers = IncomingBody::finish(incoming);
    Ok(Incoming {
        status,
        headers,
        body,
    })
}

fn read_body(
    incoming: &IncomingBody,
    max: usize,
    at: &str,
    failed: &dyn Fn(&ErrorCode) -> PluginError,
) -> Result<Vec<u8>, PluginError> {
    let stream = incoming.stream().map_err(|()| {
        PluginError::permanent(format_args!("{at}: response body stream already taken"))
    })?;
    let mut body = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => {
                if body.len() + chunk.len() > max {
                    return Err(PluginError::permanent(format_args!(
                        "{at}: the response is larger than {max} bytes"
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(match wasip2::http::types::http_error_code(&e) {
                    Some(code) => failed(&code),
                    None => PluginError::retryable(format_args!(
                        "{at}: reading the response failed: {}",
                        e.to_debug_string()
                    )),
                });
            }
        }
    }
    Ok(body)
}
