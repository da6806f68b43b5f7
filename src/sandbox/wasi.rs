//! Our own WASI preview1 (`wasi_snapshot_preview1`) for the sandboxed interpreter: every
//! answer is a pure function of the run's program, stdin and fuel.
//!
//! What the guest sees:
//! - fds 0, 1, 2 only: stdin reads the run's input from memory, stdout and stderr append to
//!   capped buffers (a write past the cap ends the run with [`GuestExit::OutputTooLarge`]).
//! - no preopened directories: the host filesystem does not exist for the guest. CPython's
//!   standard library is inside python.wasm (wasi-vfs packs it into the module's data and
//!   answers the file calls for it inside the guest, before they reach us).
//! - clocks that never move ([`REALTIME_NS`], [`MONOTONIC_NS`]), `random_get` from
//!   SplitMix64 seeded with [`RANDOM_SEED`], `poll_oneoff` that says every timer has fired.
//! - sockets, links, renames and every other path call: `EBADF`/`ENOTSUP`.
//!
//! **Architecture Invariant:** nothing here reads the host's clock, randomness, environment
//! or files. A call that would need them gets a fixed answer or an error number.

use wasmtime::{Caller, Extern, Linker};

use crate::envs::rng::SplitMix64;

/// The wall clock the guest reads: 2024-01-01T00:00:00Z, forever.
pub const REALTIME_NS: u64 = 1_704_067_200_000_000_000;
/// The monotonic clock the guest reads: it never advances.
pub const MONOTONIC_NS: u64 = 1_000_000_000;
/// The seed of the guest's `random_get` stream (and so of `os.urandom`).
pub const RANDOM_SEED: u64 = 0x5EED_0F5A_4DB0_C5ED;

const MODULE: &str = "wasi_snapshot_preview1";

// WASI errno values (preview1).
const ERRNO_SUCCESS: i32 = 0;
const ERRNO_BADF: i32 = 8;
const ERRNO_FAULT: i32 = 21;
const ERRNO_INVAL: i32 = 28;
const ERRNO_NOTSUP: i32 = 58;
const ERRNO_SPIPE: i32 = 70;

const FILETYPE_CHARACTER_DEVICE: u8 = 2;
// Rights of the standard streams. FD_SEEK is included so that wasi-libc's isatty() says
// "not a terminal" (stdout is block-buffered like a pipe); seeking itself answers ESPIPE.
const RIGHTS_STDIO: u64 = (1 << 1) // fd_read
    | (1 << 2) // fd_seek
    | (1 << 3) // fd_fdstat_set_flags
    | (1 << 6) // fd_write
    | (1 << 21) // fd_filestat_get
    | (1 << 27); // poll_fd_readwrite

const EVENTTYPE_CLOCK: u8 = 0;
const SUBSCRIPTION_BYTES: usize = 48;
const EVENT_BYTES: usize = 32;

/// Why the guest stopped before returning from `_start`; carried as the host call's error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuestExit {
    #[error("the program exited with status {0}")]
    Exit(i32),
    #[error("the program wrote more than {0} bytes to one output stream")]
    OutputTooLarge(u64),
}

/// The per-run state the WASI calls read and write.
#[derive(Debug)]
pub struct WasiState {
    args: Vec<Vec<u8>>,
    environment: Vec<Vec<u8>>,
    stdin: Vec<u8>,
    stdin_offset: usize,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    output_bytes_max: u64,
    random: SplitMix64,
}

impl WasiState {
    pub fn new(
        args: &[&[u8]],
        environment: &[&[u8]],
        stdin: Vec<u8>,
        output_bytes_max: u64,
    ) -> Self {
        let nul_terminated = |items: &[&[u8]]| {
            items
                .iter()
                .map(|item| {
                    let mut owned = item.to_vec();
                    owned.push(0);
                    owned
                })
                .collect()
        };
        Self {
            args: nul_terminated(args),
            environment: nul_terminated(environment),
            stdin,
            stdin_offset: 0,
            stdout: Vec::new(),
            stderr: Vec::new(),
            output_bytes_max,
            random: SplitMix64::new(RANDOM_SEED),
        }
    }
}

/// Anything whose store data holds a [`WasiState`].
pub trait HasWasi {
    fn wasi(&mut self) -> &mut WasiState;
}

/// Guest memory as a byte slice with bounds-checked little-endian access; an access out of
/// bounds is the guest's fault (`EFAULT`), never the host's.
struct Guest<'a>(&'a mut [u8]);

impl Guest<'_> {
    fn slice(&self, pointer: i32, length: u32) -> Result<&[u8], i32> {
        let start = pointer as u32 as usize;
        let end = start.checked_add(length as usize).ok_or(ERRNO_FAULT)?;
        self.0.get(start..end).ok_or(ERRNO_FAULT)
    }

    fn slice_mut(&mut self, pointer: i32, length: u32) -> Result<&mut [u8], i32> {
        let start = pointer as u32 as usize;
        let end = start.checked_add(length as usize).ok_or(ERRNO_FAULT)?;
        self.0.get_mut(start..end).ok_or(ERRNO_FAULT)
    }

    fn u32_at(&self, pointer: i32) -> Result<u32, i32> {
        let bytes = self.slice(pointer, 4)?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn put(&mut self, pointer: i32, bytes: &[u8]) -> Result<(), i32> {
        self.slice_mut(pointer, bytes.len() as u32)?
            .copy_from_slice(bytes);
        Ok(())
    }

    fn put_u32(&mut self, pointer: i32, value: u32) -> Result<(), i32> {
        self.put(pointer, &value.to_le_bytes())
    }

    fn put_u64(&mut self, pointer: i32, value: u64) -> Result<(), i32> {
        self.put(pointer, &value.to_le_bytes())
    }

    /// The (pointer, length) pairs of an iovec array.
    fn iovecs(&self, pointer: i32, count: i32) -> Result<Vec<(i32, u32)>, i32> {
        (0..count.max(0))
            .map(|index| {
                let at = pointer.wrapping_add(index.wrapping_mul(8));
                Ok((self.u32_at(at)? as i32, self.u32_at(at.wrapping_add(4))?))
            })
            .collect()
    }
}

/// Runs `body` with the guest's memory and the WASI state; its `Err(errno)` becomes the
/// call's return value.
fn with_guest<T: HasWasi>(
    caller: &mut Caller<'_, T>,
    body: impl FnOnce(&mut Guest<'_>, &mut WasiState) -> Result<i32, i32>,
) -> i32 {
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
        return ERRNO_FAULT;
    };
    let (bytes, data) = memory.data_and_store_mut(caller);
    let mut guest = Guest(bytes);
    body(&mut guest, data.wasi()).unwrap_or_else(|errno| errno)
}

/// Writes a list's item count and total byte size (`args_sizes_get`, `environ_sizes_get`).
fn write_sizes(
    guest: &mut Guest<'_>,
    items: &[Vec<u8>],
    count: i32,
    size: i32,
) -> Result<i32, i32> {
    let total: usize = items.iter().map(Vec::len).sum();
    guest.put_u32(count, items.len() as u32)?;
    guest.put_u32(size, total as u32)?;
    Ok(ERRNO_SUCCESS)
}

fn write_list(
    guest: &mut Guest<'_>,
    items: &[Vec<u8>],
    pointers: i32,
    buffer: i32,
) -> Result<i32, i32> {
    let mut offset = buffer;
    for (index, item) in items.iter().enumerate() {
        guest.put_u32(pointers.wrapping_add(index as i32 * 4), offset as u32)?;
        guest.put(offset, item)?;
        offset = offset.wrapping_add(item.len() as i32);
    }
    Ok(ERRNO_SUCCESS)
}

/// Adds every `wasi_snapshot_preview1` function python.wasm imports to `linker`.
pub fn add_to_linker<T: HasWasi + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.func_wrap(
        MODULE,
        "args_sizes_get",
        |mut caller: Caller<'_, T>, count: i32, size: i32| {
            with_guest(&mut caller, |guest, wasi| {
                write_sizes(guest, &wasi.args, count, size)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "args_get",
        |mut caller: Caller<'_, T>, pointers: i32, buffer: i32| {
            with_guest(&mut caller, |guest, wasi| {
                write_list(guest, &wasi.args, pointers, buffer)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "environ_sizes_get",
        |mut caller: Caller<'_, T>, count: i32, size: i32| {
            with_guest(&mut caller, |guest, wasi| {
                write_sizes(guest, &wasi.environment, count, size)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "environ_get",
        |mut caller: Caller<'_, T>, pointers: i32, buffer: i32| {
            with_guest(&mut caller, |guest, wasi| {
                write_list(guest, &wasi.environment, pointers, buffer)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "clock_res_get",
        |mut caller: Caller<'_, T>, _clock: i32, resolution: i32| {
            with_guest(&mut caller, |guest, _| {
                guest.put_u64(resolution, 1_000)?;
                Ok(ERRNO_SUCCESS)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "clock_time_get",
        |mut caller: Caller<'_, T>, clock: i32, _precision: i64, time: i32| {
            with_guest(&mut caller, |guest, _| {
                // Clock 0 is the wall clock; monotonic and the CPU-time clocks never move.
                let now = if clock == 0 {
                    REALTIME_NS
                } else {
                    MONOTONIC_NS
                };
                guest.put_u64(time, now)?;
                Ok(ERRNO_SUCCESS)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "random_get",
        |mut caller: Caller<'_, T>, buffer: i32, length: i32| {
            with_guest(&mut caller, |guest, wasi| {
                let target = guest.slice_mut(buffer, length as u32)?;
                for chunk in target.chunks_mut(8) {
                    let word = wasi.random.next_u64().to_le_bytes();
                    chunk.copy_from_slice(&word[..chunk.len()]);
                }
                Ok(ERRNO_SUCCESS)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_write",
        |mut caller: Caller<'_, T>,
         fd: i32,
         iovecs: i32,
         count: i32,
         written: i32|
         -> wasmtime::Result<i32> {
            let mut overflow = None;
            let errno = with_guest(&mut caller, |guest, wasi| {
                if fd != 1 && fd != 2 {
                    return Err(ERRNO_BADF);
                }
                let mut total = 0u32;
                for (pointer, length) in guest.iovecs(iovecs, count)? {
                    let bytes = guest.slice(pointer, length)?;
                    let cap = wasi.output_bytes_max;
                    let stream = if fd == 1 {
                        &mut wasi.stdout
                    } else {
                        &mut wasi.stderr
                    };
                    let room = cap.saturating_sub(stream.len() as u64) as usize;
                    if bytes.len() > room {
                        // Keep what fits, so the caller sees where the output was cut.
                        stream.extend_from_slice(&bytes[..room]);
                        overflow = Some(cap);
                        return Ok(ERRNO_SUCCESS);
                    }
                    stream.extend_from_slice(bytes);
                    total = total.wrapping_add(length);
                }
                guest.put_u32(written, total)?;
                Ok(ERRNO_SUCCESS)
            });
            match overflow {
                Some(cap) => Err(wasmtime::Error::new(GuestExit::OutputTooLarge(cap))),
                None => Ok(errno),
            }
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_read",
        |mut caller: Caller<'_, T>, fd: i32, iovecs: i32, count: i32, read: i32| {
            with_guest(&mut caller, |guest, wasi| {
                if fd != 0 {
                    return Err(ERRNO_BADF);
                }
                let mut total = 0u32;
                for (pointer, length) in guest.iovecs(iovecs, count)? {
                    let remaining = &wasi.stdin[wasi.stdin_offset..];
                    let take = remaining.len().min(length as usize);
                    guest.put(pointer, &remaining[..take])?;
                    wasi.stdin_offset += take;
                    total = total.wrapping_add(take as u32);
                    if take < length as usize {
                        break;
                    }
                }
                guest.put_u32(read, total)?;
                Ok(ERRNO_SUCCESS)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_fdstat_get",
        |mut caller: Caller<'_, T>, fd: i32, stat: i32| {
            with_guest(&mut caller, |guest, _| {
                if !(0..=2).contains(&fd) {
                    return Err(ERRNO_BADF);
                }
                let mut bytes = [0u8; 24];
                bytes[0] = FILETYPE_CHARACTER_DEVICE;
                bytes[8..16].copy_from_slice(&RIGHTS_STDIO.to_le_bytes());
                guest.put(stat, &bytes)?;
                Ok(ERRNO_SUCCESS)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_filestat_get",
        |mut caller: Caller<'_, T>, fd: i32, stat: i32| {
            with_guest(&mut caller, |guest, _| {
                if !(0..=2).contains(&fd) {
                    return Err(ERRNO_BADF);
                }
                let mut bytes = [0u8; 64];
                bytes[16] = FILETYPE_CHARACTER_DEVICE;
                bytes[24..32].copy_from_slice(&1u64.to_le_bytes());
                guest.put(stat, &bytes)?;
                Ok(ERRNO_SUCCESS)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_seek",
        |_: Caller<'_, T>, fd: i32, _offset: i64, _whence: i32, _result: i32| {
            if (0..=2).contains(&fd) {
                ERRNO_SPIPE
            } else {
                ERRNO_BADF
            }
        },
    )?;
    linker.func_wrap(MODULE, "fd_tell", |_: Caller<'_, T>, fd: i32, _: i32| {
        if (0..=2).contains(&fd) {
            ERRNO_SPIPE
        } else {
            ERRNO_BADF
        }
    })?;
    linker.func_wrap(MODULE, "fd_close", |_: Caller<'_, T>, fd: i32| {
        if (0..=2).contains(&fd) {
            ERRNO_SUCCESS
        } else {
            ERRNO_BADF
        }
    })?;
    linker.func_wrap(
        MODULE,
        "fd_fdstat_set_flags",
        |_: Caller<'_, T>, fd: i32, _: i32| {
            if (0..=2).contains(&fd) {
                ERRNO_SUCCESS
            } else {
                ERRNO_BADF
            }
        },
    )?;
    for name in ["fd_sync", "fd_datasync"] {
        linker.func_wrap(MODULE, name, |_: Caller<'_, T>, fd: i32| {
            if (0..=2).contains(&fd) {
                ERRNO_INVAL
            } else {
                ERRNO_BADF
            }
        })?;
    }
    // No directory is preopened: the guest's path calls never reach a host directory.
    linker.func_wrap(
        MODULE,
        "fd_prestat_get",
        |_: Caller<'_, T>, _: i32, _: i32| ERRNO_BADF,
    )?;
    linker.func_wrap(
        MODULE,
        "fd_prestat_dir_name",
        |_: Caller<'_, T>, _: i32, _: i32, _: i32| ERRNO_BADF,
    )?;
    linker.func_wrap(
        MODULE,
        "fd_advise",
        |_: Caller<'_, T>, _: i32, _: i64, _: i64, _: i32| ERRNO_BADF,
    )?;
    linker.func_wrap(
        MODULE,
        "fd_allocate",
        |_: Caller<'_, T>, _: i32, _: i64, _: i64| ERRNO_BADF,
    )?;
    linker.func_wrap(
        MODULE,
        "fd_filestat_set_size",
        |_: Caller<'_, T>, _: i32, _: i64| ERRNO_BADF,
    )?;
    linker.func_wrap(
        MODULE,
        "fd_filestat_set_times",
        |_: Caller<'_, T>, _: i32, _: i64, _: i64, _: i32| ERRNO_BADF,
    )?;
    for name in ["fd_pread", "fd_pwrite"] {
        linker.func_wrap(
            MODULE,
            name,
            |_: Caller<'_, T>, _: i32, _: i32, _: i32, _: i64, _: i32| ERRNO_BADF,
        )?;
    }
    linker.func_wrap(
        MODULE,
        "fd_readdir",
        |_: Caller<'_, T>, _: i32, _: i32, _: i32, _: i64, _: i32| ERRNO_BADF,
    )?;
    linker.func_wrap(
        MODULE,
        "path_create_directory",
        |_: Caller<'_, T>, _: i32, _: i32, _: i32| ERRNO_BADF,
    )?;
    linker.func_wrap(
        MODULE,
        "path_filestat_get",
        |_: Caller<'_, T>, _: i32, _: i32, _: i32, _: i32, _: i32| ERRNO_BADF,
    )?;
    linker.func_wrap(
        MODULE,
        "path_filestat_set_times",
        |_: Caller<'_, T>, _: i32, _: i32, _: i32, _: i32, _: i64, _: i64, _: i32| ERRNO_BADF,
    )?;
    linker.func_wrap(
        MODULE,
        "path_link",
        |_: Caller<'_, T>, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32| ERRNO_BADF,
    )?;
    linker.func_wrap(
        MODULE,
        "path_open",
        |_: Caller<'_, T>,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i64,
         _: i64,
         _: i32,
         _: i32| ERRNO_BADF,
    )?;
    linker.func_wrap(
        MODULE,
        "path_readlink",
        |_: Caller<'_, T>, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32| ERRNO_BADF,
    )?;
    for name in ["path_remove_directory", "path_unlink_file"] {
        linker.func_wrap(MODULE, name, |_: Caller<'_, T>, _: i32, _: i32, _: i32| {
            ERRNO_BADF
        })?;
    }
    linker.func_wrap(
        MODULE,
        "path_rename",
        |_: Caller<'_, T>, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32| ERRNO_BADF,
    )?;
    linker.func_wrap(
        MODULE,
        "path_symlink",
        |_: Caller<'_, T>, _: i32, _: i32, _: i32, _: i32, _: i32| ERRNO_BADF,
    )?;
    linker.func_wrap(
        MODULE,
        "poll_oneoff",
        |mut caller: Caller<'_, T>, subscriptions: i32, events: i32, count: i32, stored: i32| {
            with_guest(&mut caller, |guest, _| {
                // Every subscription is ready at once: timers have fired (time.sleep returns
                // immediately; the clocks do not move) and stdin never blocks.
                let count = count.max(0) as u32;
                for index in 0..count {
                    let subscription =
                        subscriptions.wrapping_add((index as usize * SUBSCRIPTION_BYTES) as i32);
                    let record = guest.slice(subscription, SUBSCRIPTION_BYTES as u32)?;
                    let mut event = [0u8; EVENT_BYTES];
                    event[0..8].copy_from_slice(&record[0..8]);
                    event[10] = record[8];
                    if record[8] != EVENTTYPE_CLOCK {
                        event[16..24].copy_from_slice(&1u64.to_le_bytes());
                    }
                    guest.put(
                        events.wrapping_add((index as usize * EVENT_BYTES) as i32),
                        &event,
                    )?;
                }
                guest.put_u32(stored, count)?;
                Ok(ERRNO_SUCCESS)
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "proc_exit",
        |_: Caller<'_, T>, status: i32| -> wasmtime::Result<()> {
            Err(wasmtime::Error::new(GuestExit::Exit(status)))
        },
    )?;
    linker.func_wrap(MODULE, "sched_yield", |_: Caller<'_, T>| ERRNO_SUCCESS)?;
    // No network: every socket call fails.
    linker.func_wrap(
        MODULE,
        "sock_accept",
        |_: Caller<'_, T>, _: i32, _: i32, _: i32| ERRNO_NOTSUP,
    )?;
    linker.func_wrap(
        MODULE,
        "sock_recv",
        |_: Caller<'_, T>, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32| ERRNO_NOTSUP,
    )?;
    linker.func_wrap(
        MODULE,
        "sock_send",
        |_: Caller<'_, T>, _: i32, _: i32, _: i32, _: i32, _: i32| ERRNO_NOTSUP,
    )?;
    linker.func_wrap(
        MODULE,
        "sock_shutdown",
        |_: Caller<'_, T>, _: i32, _: i32| ERRNO_NOTSUP,
    )?;
    Ok(())
}
