//! A package index on loopback: serves fixed bytes by path over HTTP/1.1 and counts the
//! requests for each path, so tests can tell what was downloaded.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

#[derive(Clone, Default)]
pub struct Routes {
    inner: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
    hits: Arc<Mutex<BTreeMap<String, u32>>>,
}

impl Routes {
    pub fn set(&self, path: &str, body: impl Into<Vec<u8>>) {
        self.inner
            .lock()
            .unwrap()
            .insert(path.to_owned(), body.into());
    }

    pub fn hits(&self, path: &str) -> u32 {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

pub struct IndexServer {
    pub url: String,
    pub routes: Routes,
}

impl IndexServer {
    pub fn start() -> IndexServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let routes = Routes::default();
        let served = routes.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let routes = served.clone();
                thread::spawn(move || serve(stream, &routes));
            }
        });
        IndexServer { url, routes }
    }
}

fn serve(stream: TcpStream, routes: &Routes) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => break,
            Ok(_) if header == "\r\n" => break,
            Ok(_) => {}
        }
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_owned();
    *routes.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let body = routes.inner.lock().unwrap().get(&path).cloned();
    let mut stream = stream;
    let (status, body) = match body {
        Some(body) => ("200 OK", body),
        None => ("404 Not Found", b"not found".to_vec()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
}
