//! Runs a Function's wasm the way Shopify's function-runner does, from crates.io parts only.
//!
//! A `shopify_function` 2.x module imports the Function API (`shopify_function_v2`, 19
//! functions) and no WASI. Shopify links it to a *provider* module holding the input (as
//! MessagePack, decoded lazily) and the output, after rewriting the imports with its trampoline.
//! The trampoline is not on crates.io, so the harness links the untrampolined module to host
//! functions that do the trampoline's work:
//!
//! | import | host function |
//! |---|---|
//! | most | call the provider export of the same name, `_`-prefixed |
//! | `input_read_utf8_str` | copy the string out of the provider's memory into the guest's |
//! | `input_get_obj_prop` | allocate in the provider, copy the name in, then look it up |
//! | `output_new_utf8_str`, `intern_utf8_str` | the provider reserves `len` bytes, the host copies the guest's bytes there |
//! | `log_new_utf8_str` | the provider reserves room in its 1 kB ring buffer (maybe in two pieces), the host copies |
//!
//! Instructions are wasmtime fuel, as function-runner counts them: every operator costs 1 except
//! `nop`, `drop`, `block`, `loop`, `end`, `else`, `return` and `unreachable`, and every function
//! entry costs 1; provider functions the guest calls are counted, `initialize`/`finalize` are
//! not. The host functions charge the fuel the trampoline's own wasm glue would have cost
//! ([`glue`]), measured against function-runner 9.2.1. Peak memory is the largest size any linear
//! memory (the Function's or the provider's) asked to grow to, as the runner's limiter records it.

use anyhow::{anyhow, bail, Context as _, Result};
use vip_fixtures::Json;
use wasmtime::{
    Caller, Config, Engine, Extern, Instance, Linker, Memory, Module, ResourceLimiter, Store,
    TypedFunc,
};

use crate::limits::Limits;

/// Fuel the trampoline's wasm glue costs per call, which host functions cannot run as wasm.
pub mod glue {
    pub const INPUT_GET_OBJ_PROP: u64 = 19;
    pub const INPUT_READ_UTF8_STR: u64 = 11;
    pub const OUTPUT_NEW_UTF8_STR: u64 = 17;
    pub const INTERN_UTF8_STR: u64 = 17;
    pub const LOG_NEW_UTF8_STR: u64 = 28;
    /// When the message wraps around the end of the provider's log ring buffer.
    pub const LOG_NEW_UTF8_STR_WRAPPED: u64 = 45;
}

/// The provider's exports the host functions call.
#[derive(Clone)]
struct Provider {
    memory: Memory,
    alloc: TypedFunc<i32, i32>,
    input_get: TypedFunc<(), i64>,
    input_get_val_len: TypedFunc<i64, i32>,
    input_get_utf8_str_addr: TypedFunc<i32, i32>,
    input_get_obj_prop: TypedFunc<(i64, i32, i32), i64>,
    input_get_interned_obj_prop: TypedFunc<(i64, i32), i64>,
    input_get_at_index: TypedFunc<(i64, i32), i64>,
    input_get_obj_key_at_index: TypedFunc<(i64, i32), i64>,
    output_new_bool: TypedFunc<i32, i32>,
    output_new_null: TypedFunc<(), i32>,
    output_new_i32: TypedFunc<i32, i32>,
    output_new_f64: TypedFunc<f64, i32>,
    output_new_utf8_str: TypedFunc<i32, i64>,
    output_new_interned_utf8_str: TypedFunc<i32, i32>,
    output_new_object: TypedFunc<i32, i32>,
    output_finish_object: TypedFunc<(), i32>,
    output_new_array: TypedFunc<i32, i32>,
    output_finish_array: TypedFunc<(), i32>,
    intern_utf8_str: TypedFunc<i32, i64>,
    log_new_utf8_str: TypedFunc<i32, i32>,
    finalize: TypedFunc<(), i32>,
}

impl Provider {
    fn new(store: &mut Store<State>, instance: &Instance) -> Result<Provider> {
        macro_rules! export {
            ($name:literal) => {
                instance
                    .get_typed_func(&mut *store, $name)
                    .with_context(|| format!("provider export {}", $name))?
            };
        }
        Ok(Provider {
            memory: instance
                .get_memory(&mut *store, "memory")
                .context("provider memory")?,
            alloc: export!("_shopify_function_alloc"),
            input_get: export!("_shopify_function_input_get"),
            input_get_val_len: export!("_shopify_function_input_get_val_len"),
            input_get_utf8_str_addr: export!("_shopify_function_input_get_utf8_str_addr"),
            input_get_obj_prop: export!("_shopify_function_input_get_obj_prop"),
            input_get_interned_obj_prop: export!("_shopify_function_input_get_interned_obj_prop"),
            input_get_at_index: export!("_shopify_function_input_get_at_index"),
            input_get_obj_key_at_index: export!("_shopify_function_input_get_obj_key_at_index"),
            output_new_bool: export!("_shopify_function_output_new_bool"),
            output_new_null: export!("_shopify_function_output_new_null"),
            output_new_i32: export!("_shopify_function_output_new_i32"),
            output_new_f64: export!("_shopify_function_output_new_f64"),
            output_new_utf8_str: export!("_shopify_function_output_new_utf8_str"),
            output_new_interned_utf8_str: export!("_shopify_function_output_new_interned_utf8_str"),
            output_new_object: export!("_shopify_function_output_new_object"),
            output_finish_object: export!("_shopify_function_output_finish_object"),
            output_new_array: export!("_shopify_function_output_new_array"),
            output_finish_array: export!("_shopify_function_output_finish_array"),
            intern_utf8_str: export!("_shopify_function_intern_utf8_str"),
            log_new_utf8_str: export!("_shopify_function_log_new_utf8_str"),
            finalize: export!("finalize"),
        })
    }
}

/// Records the largest size any memory asks for (function-runner's `MemoryLimiter`).
#[derive(Default)]
struct PeakMemory {
    bytes: usize,
}

impl ResourceLimiter for PeakMemory {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool> {
        self.bytes = self.bytes.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool> {
        Ok(true)
    }
}

#[derive(Default)]
struct State {
    peak_memory: PeakMemory,
    provider: Option<Provider>,
    profile: Profile,
}

/// Where a run's instructions went: per Function API import, how many calls and how much fuel
/// the provider (plus the trampoline glue) spent in them. The rest was spent in the Function.
#[derive(Clone, Debug, Default)]
pub struct Profile {
    pub imports: std::collections::BTreeMap<&'static str, ImportCost>,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct ImportCost {
    pub calls: u64,
    pub fuel: u64,
}

impl Profile {
    /// Fuel spent behind the Function API, all imports together.
    pub fn provider_fuel(&self) -> u64 {
        self.imports.values().map(|cost| cost.fuel).sum()
    }
}

/// Runs `body` (a host function's work) and books the fuel it used against `import`.
fn profiled<R>(
    caller: &mut Caller<'_, State>,
    import: &'static str,
    body: impl FnOnce(&mut Caller<'_, State>) -> Result<R>,
) -> Result<R> {
    let before = caller.get_fuel()?;
    let result = body(caller)?;
    let used = before.saturating_sub(caller.get_fuel()?);
    let cost = caller.data_mut().profile.imports.entry(import).or_default();
    cost.calls += 1;
    cost.fuel += used;
    Ok(result)
}

/// The measurements and results of one run.
#[derive(Clone, Debug)]
pub struct RunReport {
    pub export: String,
    pub cart_lines: usize,
    pub limits: Limits,
    pub instructions: u64,
    pub memory_bytes: u64,
    /// Input as compact JSON, with `/` escaped as Shopify's JSON writer does.
    pub input_json_bytes: u64,
    /// Input as the MessagePack the provider reads.
    pub input_msgpack_bytes: u64,
    /// `None` when the run trapped.
    pub output: Option<Json>,
    pub output_json_bytes: u64,
    pub output_msgpack_bytes: u64,
    pub logs: String,
    /// The trap, when the run failed (an `Err` or panic in the Function).
    pub trap: Option<String>,
    pub profile: Profile,
}

impl RunReport {
    /// Every Shopify limit this run exceeds, in words. Sizes are checked as JSON, the larger of
    /// the two encodings (which one production measures is not documented).
    pub fn limit_violations(&self) -> Vec<String> {
        let mut over = Vec::new();
        let l = &self.limits;
        let mut check = |what: &str, value: u64, limit: u64| {
            if value > limit {
                over.push(format!("{what} {value} > limit {limit}"));
            }
        };
        check("instructions", self.instructions, l.instructions);
        check("memory bytes", self.memory_bytes, l.memory_bytes);
        check(
            "input bytes",
            self.input_json_bytes.max(self.input_msgpack_bytes),
            l.input_bytes,
        );
        check(
            "output bytes",
            self.output_json_bytes.max(self.output_msgpack_bytes),
            l.output_bytes,
        );
        check("log bytes", self.logs.len() as u64, l.log_bytes);
        over
    }
}

/// Compiled modules and the import shims, reusable across runs.
pub struct Harness {
    engine: Engine,
    function: Module,
    provider: Module,
    linker: Linker<State>,
    pub function_bytes: u64,
}

impl Harness {
    pub fn new(function_wasm: &[u8], provider_wasm: &[u8]) -> Result<Harness> {
        let mut config = Config::new();
        config.consume_fuel(true);
        let engine = Engine::new(&config)?;
        let function = Module::new(&engine, function_wasm).context("compile the Function")?;
        let provider = Module::new(&engine, provider_wasm).context("compile the provider")?;
        for import in function.imports() {
            if import.module() != "shopify_function_v2" {
                bail!(
                    "the Function imports {}::{}; Shopify only provides shopify_function_v2 to 2.x Functions (no WASI)",
                    import.module(),
                    import.name()
                );
            }
        }
        let mut linker = Linker::new(&engine);
        link_function_api(&mut linker)?;
        Ok(Harness {
            engine,
            function,
            provider,
            linker,
            function_bytes: function_wasm.len() as u64,
        })
    }

    /// Builds (or locates) the Function and provider, and compiles them.
    pub fn from_artifacts() -> Result<Harness> {
        let artifacts = crate::artifacts::artifacts()?;
        let function = std::fs::read(&artifacts.function_wasm)
            .with_context(|| format!("read {}", artifacts.function_wasm.display()))?;
        let provider = std::fs::read(&artifacts.provider_wasm)
            .with_context(|| format!("read {}", artifacts.provider_wasm.display()))?;
        Harness::new(&function, &provider)
    }

    /// Runs `export` on `input` (JSON in the input query's order) in a fresh store.
    pub fn run(&self, export: &str, input: &Json) -> Result<RunReport> {
        let input_msgpack = rmp_serde::to_vec(input).context("encode the input as MessagePack")?;
        let cart_lines = cart_lines(input);
        let mut store = Store::new(&self.engine, State::default());
        store.limiter(|state| &mut state.peak_memory);
        // Setting up the input is not charged to the Function.
        store.set_fuel(u64::MAX)?;

        let provider_instance = Instance::new(&mut store, &self.provider, &[])?;
        let provider = Provider::new(&mut store, &provider_instance)?;
        let initialize: TypedFunc<i32, i32> =
            provider_instance.get_typed_func(&mut store, "initialize")?;
        let input_len = i32::try_from(input_msgpack.len()).context("input too large")?;
        let input_at = initialize.call(&mut store, input_len)?;
        provider
            .memory
            .write(&mut store, to_usize(input_at)?, &input_msgpack)?;
        store.data_mut().provider = Some(provider.clone());

        let instance = self.linker.instantiate(&mut store, &self.function)?;
        let entry: TypedFunc<(), ()> = instance
            .get_typed_func(&mut store, export)
            .with_context(|| format!("the Function has no export {export:?}"))?;
        store.set_fuel(u64::MAX)?;
        let result = entry.call(&mut store, ());
        let instructions = u64::MAX - store.get_fuel()?;

        store.set_fuel(u64::MAX)?;
        let results_at = to_usize(provider.finalize.call(&mut store, ())?)?;
        let mut words = [0u8; 24];
        provider.memory.read(&store, results_at, &mut words)?;
        let word = |i: usize| {
            u32::from_le_bytes([
                words[i * 4],
                words[i * 4 + 1],
                words[i * 4 + 2],
                words[i * 4 + 3],
            ]) as usize
        };
        let read = |at: usize, len: usize| -> Result<Vec<u8>> {
            let mut bytes = vec![0; len];
            provider.memory.read(&store, at, &mut bytes)?;
            Ok(bytes)
        };
        let output_msgpack = read(word(0), word(1))?;
        let mut logs = read(word(2), word(3))?;
        logs.extend(read(word(4), word(5))?);

        let trap = result.err().map(|error| format!("{error:?}"));
        let output = if trap.is_some() {
            None
        } else {
            Some(rmp_serde::from_slice::<Json>(&output_msgpack).context("decode the output")?)
        };
        let output_json_bytes = output.as_ref().map_or(0, |o| o.to_text().len() as u64);
        Ok(RunReport {
            export: export.to_owned(),
            cart_lines,
            limits: Limits::for_cart_lines(cart_lines),
            instructions,
            memory_bytes: store.data().peak_memory.bytes as u64,
            input_json_bytes: shopify_json_len(input),
            input_msgpack_bytes: input_msgpack.len() as u64,
            output,
            output_json_bytes,
            output_msgpack_bytes: output_msgpack.len() as u64,
            logs: String::from_utf8_lossy(&logs).into_owned(),
            trap,
            profile: std::mem::take(&mut store.data_mut().profile),
        })
    }
}

/// Length of `cart.lines`, which Shopify's limits scale with.
fn cart_lines(input: &Json) -> usize {
    match input.get("cart").and_then(|cart| cart.get("lines")) {
        Some(Json::Array(lines)) => lines.len(),
        _ => 0,
    }
}

/// Compact JSON length with `/` written as `\/`, as Shopify's JSON (and its runner) escapes it;
/// outside strings JSON has no `/`, so counting them is enough.
fn shopify_json_len(value: &Json) -> u64 {
    let text = value.to_text();
    (text.len() + text.bytes().filter(|&b| b == b'/').count()) as u64
}

fn to_usize(value: i32) -> Result<usize> {
    usize::try_from(value as u32).map_err(|_| anyhow!("address out of range"))
}

fn provider(caller: &Caller<'_, State>) -> Result<Provider> {
    caller
        .data()
        .provider
        .clone()
        .ok_or_else(|| anyhow!("the provider is not initialized"))
}

fn guest_memory(caller: &mut Caller<'_, State>) -> Result<Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(memory)) => Ok(memory),
        _ => bail!("the Function exports no memory"),
    }
}

fn charge(caller: &mut Caller<'_, State>, fuel: u64) -> Result<()> {
    let left = caller.get_fuel()?;
    caller.set_fuel(left.saturating_sub(fuel))?;
    Ok(())
}

/// Copies `len` bytes at `from` in `source` to `to` in `dest`.
fn copy(
    caller: &mut Caller<'_, State>,
    source: Memory,
    from: usize,
    dest: Memory,
    to: usize,
    len: usize,
) -> Result<()> {
    let bytes = source
        .data(&*caller)
        .get(from..from + len)
        .ok_or_else(|| anyhow!("read out of bounds"))?
        .to_vec();
    dest.write(&mut *caller, to, &bytes)?;
    Ok(())
}

const API: &str = "shopify_function_v2";

fn link_function_api(linker: &mut Linker<State>) -> Result<()> {
    // Imports that need no copying: straight to the provider.
    macro_rules! pass_through {
        ($import:literal, $field:ident, ($($arg:ident: $ty:ty),*) -> $ret:ty) => {
            linker.func_wrap(API, $import, |mut caller: Caller<'_, State>, $($arg: $ty),*| -> Result<$ret> {
                profiled(&mut caller, $import, |caller| {
                    let f = provider(caller)?.$field;
                    f.call(&mut *caller, ($($arg),*))
                })
            })?;
        };
    }
    pass_through!("shopify_function_input_get", input_get, () -> i64);
    pass_through!("shopify_function_input_get_val_len", input_get_val_len, (scope: i64) -> i32);
    pass_through!("shopify_function_input_get_interned_obj_prop", input_get_interned_obj_prop, (scope: i64, id: i32) -> i64);
    pass_through!("shopify_function_input_get_at_index", input_get_at_index, (scope: i64, index: i32) -> i64);
    pass_through!("shopify_function_input_get_obj_key_at_index", input_get_obj_key_at_index, (scope: i64, index: i32) -> i64);
    pass_through!("shopify_function_output_new_bool", output_new_bool, (value: i32) -> i32);
    pass_through!("shopify_function_output_new_null", output_new_null, () -> i32);
    pass_through!("shopify_function_output_new_i32", output_new_i32, (value: i32) -> i32);
    pass_through!("shopify_function_output_new_f64", output_new_f64, (value: f64) -> i32);
    pass_through!("shopify_function_output_new_interned_utf8_str", output_new_interned_utf8_str, (id: i32) -> i32);
    pass_through!("shopify_function_output_new_object", output_new_object, (len: i32) -> i32);
    pass_through!("shopify_function_output_finish_object", output_finish_object, () -> i32);
    pass_through!("shopify_function_output_new_array", output_new_array, (len: i32) -> i32);
    pass_through!("shopify_function_output_finish_array", output_finish_array, () -> i32);

    linker.func_wrap(
        API,
        "shopify_function_input_read_utf8_str",
        |mut caller: Caller<'_, State>, src: i32, out: i32, len: i32| -> Result<()> {
            profiled(
                &mut caller,
                "shopify_function_input_read_utf8_str",
                |caller| {
                    let p = provider(caller)?;
                    let at = p.input_get_utf8_str_addr.call(&mut *caller, src)?;
                    let guest = guest_memory(caller)?;
                    copy(
                        caller,
                        p.memory,
                        to_usize(at)?,
                        guest,
                        to_usize(out)?,
                        to_usize(len)?,
                    )?;
                    charge(caller, glue::INPUT_READ_UTF8_STR)
                },
            )
        },
    )?;

    linker.func_wrap(
        API,
        "shopify_function_input_get_obj_prop",
        |mut caller: Caller<'_, State>, scope: i64, ptr: i32, len: i32| -> Result<i64> {
            profiled(
                &mut caller,
                "shopify_function_input_get_obj_prop",
                |caller| {
                    let p = provider(caller)?;
                    let at = p.alloc.call(&mut *caller, len)?;
                    let guest = guest_memory(caller)?;
                    copy(
                        caller,
                        guest,
                        to_usize(ptr)?,
                        p.memory,
                        to_usize(at)?,
                        to_usize(len)?,
                    )?;
                    let value = p.input_get_obj_prop.call(&mut *caller, (scope, at, len))?;
                    charge(caller, glue::INPUT_GET_OBJ_PROP)?;
                    Ok(value)
                },
            )
        },
    )?;

    linker.func_wrap(
        API,
        "shopify_function_output_new_utf8_str",
        |mut caller: Caller<'_, State>, ptr: i32, len: i32| -> Result<i32> {
            profiled(
                &mut caller,
                "shopify_function_output_new_utf8_str",
                |caller| {
                    let p = provider(caller)?;
                    let reserved = p.output_new_utf8_str.call(&mut *caller, len)? as u64;
                    let (result, at) = ((reserved >> 32) as i32, reserved as u32 as i32);
                    if result == 0 {
                        let guest = guest_memory(caller)?;
                        copy(
                            caller,
                            guest,
                            to_usize(ptr)?,
                            p.memory,
                            to_usize(at)?,
                            to_usize(len)?,
                        )?;
                    }
                    charge(caller, glue::OUTPUT_NEW_UTF8_STR)?;
                    Ok(result)
                },
            )
        },
    )?;

    linker.func_wrap(
        API,
        "shopify_function_intern_utf8_str",
        |mut caller: Caller<'_, State>, ptr: i32, len: i32| -> Result<i32> {
            profiled(&mut caller, "shopify_function_intern_utf8_str", |caller| {
                let p = provider(caller)?;
                let reserved = p.intern_utf8_str.call(&mut *caller, len)? as u64;
                let (id, at) = ((reserved >> 32) as i32, reserved as u32 as i32);
                let guest = guest_memory(caller)?;
                copy(
                    caller,
                    guest,
                    to_usize(ptr)?,
                    p.memory,
                    to_usize(at)?,
                    to_usize(len)?,
                )?;
                charge(caller, glue::INTERN_UTF8_STR)?;
                Ok(id)
            })
        },
    )?;

    linker.func_wrap(
        API,
        "shopify_function_log_new_utf8_str",
        |mut caller: Caller<'_, State>, ptr: i32, len: i32| -> Result<()> {
            profiled(&mut caller, "shopify_function_log_new_utf8_str", |caller| {
                let p = provider(caller)?;
                let plan_at = to_usize(p.log_new_utf8_str.call(&mut *caller, len)?)?;
                // Five u32: source offset, first destination and length, second destination and length.
                let mut plan = [0u8; 20];
                p.memory.read(&*caller, plan_at, &mut plan)?;
                let word = |i: usize| {
                    u32::from_le_bytes([
                        plan[i * 4],
                        plan[i * 4 + 1],
                        plan[i * 4 + 2],
                        plan[i * 4 + 3],
                    ]) as usize
                };
                let (skip, to1, len1, to2, len2) = (word(0), word(1), word(2), word(3), word(4));
                let from = to_usize(ptr)? + skip;
                let guest = guest_memory(caller)?;
                copy(caller, guest, from, p.memory, to1, len1)?;
                let wrapped = len1 != to_usize(len)?;
                if wrapped {
                    copy(caller, guest, from + len1, p.memory, to2, len2)?;
                }
                charge(
                    caller,
                    if wrapped {
                        glue::LOG_NEW_UTF8_STR_WRAPPED
                    } else {
                        glue::LOG_NEW_UTF8_STR
                    },
                )
            })
        },
    )?;
    Ok(())
}
