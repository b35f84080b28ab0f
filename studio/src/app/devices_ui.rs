//! The devices section of the Settings window: the CPU (model, cores, SIMD level), each NVIDIA
//! GPU (name, memory used of total, utilisation, temperature, processes) or why there is none,
//! and the default device every run uses for `device: auto` nodes (docs/ARCHITECTURE.md §17).
//!
//! The GPUs come from the app's [`GpuProvider`] (`engine::devices::provider()`, or one a test
//! sets with [`super::StudioApp::set_gpu_provider`]), asked when Settings opens and on
//! Refresh, never per frame. The default device lives in the user store
//! (`engine::devices::{default_device, set_default_device}`), shared with the CLI.

use egui::Color32;
use engine::devices::{DeviceReport, GpuInfo, GpuProvider, GpuStatus};

use super::{AppCommand, StudioApp};

/// The last device report, and how many were made.
#[derive(Default)]
pub struct DevicesPanel {
    pub report: Option<DeviceReport>,
    /// Provider queries so far (Settings must not query every frame).
    pub queries: u64,
}

impl DevicesPanel {
    /// Asks `provider` (and the store, for the default device) again.
    pub fn refresh(&mut self, provider: &dyn GpuProvider, store: Option<&engine::Store>) {
        self.queries += 1;
        self.report = Some(engine::devices::report(provider, store));
    }

    /// The devices a run may target: `cpu`, then `cuda:N` per GPU found.
    pub fn targets(&self) -> Vec<String> {
        match &self.report {
            Some(r) => r.choices.clone(),
            None => vec!["cpu".into()],
        }
    }

    /// The default-device choices: `auto`, then [`DevicesPanel::targets`].
    pub fn choices(&self) -> Vec<String> {
        std::iter::once("auto".to_string())
            .chain(self.targets())
            .collect()
    }
}

/// GiB, one decimal.
fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// What a device choice means, for the combo.
pub fn device_text(device: &str) -> String {
    match device {
        "auto" => "auto (first GPU, else CPU)".into(),
        "cpu" => "cpu".into(),
        other => other.into(),
    }
}

fn gpu_ui(ui: &mut egui::Ui, g: &GpuInfo) {
    ui.horizontal(|ui| {
        ui.strong(format!("cuda:{}", g.index));
        ui.label(&g.name);
    });
    let frac = if g.memory_total_bytes == 0 {
        0.0
    } else {
        g.memory_used_bytes as f32 / g.memory_total_bytes as f32
    };
    ui.add(
        egui::ProgressBar::new(frac)
            .desired_width(260.0)
            .text(format!(
                "memory {} / {}",
                gib(g.memory_used_bytes),
                gib(g.memory_total_bytes)
            )),
    );
    let mut line = Vec::new();
    if let Some(u) = g.utilization_percent {
        line.push(format!("utilisation {u} %"));
    }
    if let Some(t) = g.temperature_c {
        line.push(format!("{t} °C"));
    }
    line.push(format!("{} process(es)", g.processes.len()));
    ui.label(line.join(" · "));
    for p in &g.processes {
        let mut text = format!("pid {}", p.pid);
        if let Some(n) = &p.name {
            text.push_str(&format!(" {n}"));
        }
        if let Some(m) = p.memory_bytes {
            text.push_str(&format!(" ({})", gib(m)));
        }
        ui.label(egui::RichText::new(text).weak());
    }
}

/// The devices section: CPU, GPUs, Refresh, and the default device combo, which edits `device`
/// (kept on Apply).
pub fn devices_ui(ui: &mut egui::Ui, panel: &DevicesPanel, device: &mut String) -> Vec<AppCommand> {
    let mut cmds = Vec::new();
    ui.horizontal(|ui| {
        ui.heading("Devices");
        if ui
            .button("Refresh devices")
            .on_hover_text("Ask the CPU and the NVIDIA driver again")
            .clicked()
        {
            cmds.push(AppCommand::RefreshDevices);
        }
    });
    match &panel.report {
        None => {
            ui.label("not queried yet");
        }
        Some(r) => {
            let c = &r.cpu;
            let cores = match c.physical_cores {
                Some(p) => format!("{p} cores, {} threads", c.logical_cores),
                None => format!("{} threads", c.logical_cores),
            };
            ui.label(format!("CPU: {} · {cores} · SIMD {}", c.model, c.simd));
            match &r.gpus {
                GpuStatus::NoDriver { reason } => {
                    ui.colored_label(Color32::GRAY, format!("GPUs: no NVIDIA driver ({reason})"));
                }
                GpuStatus::Ok {
                    driver_version,
                    gpus,
                } => {
                    let driver = driver_version.as_deref().unwrap_or("unknown version");
                    if gpus.is_empty() {
                        ui.label(format!("GPUs: none (NVIDIA driver {driver})"));
                    } else {
                        ui.label(format!("GPUs (NVIDIA driver {driver}):"));
                        for g in gpus {
                            ui.group(|ui| gpu_ui(ui, g));
                        }
                    }
                }
            }
            if !r.cuda_build {
                ui.colored_label(
                    Color32::GRAY,
                    "This build has no CUDA support: nodes run on the CPU.",
                );
            }
        }
    }
    ui.horizontal(|ui| {
        let l = ui.label("Default device");
        egui::ComboBox::from_id_salt("default-device")
            .selected_text(device_text(device))
            .show_ui(ui, |ui| {
                let mut choices = panel.choices();
                if !choices.contains(device) {
                    // Kept from another machine or an unplugged GPU: still shown, still kept.
                    choices.push(device.clone());
                }
                for c in choices {
                    let text = device_text(&c);
                    ui.selectable_value(device, c, text);
                }
            })
            .response
            .labelled_by(l.id)
            .on_hover_text("What nodes whose device is `auto` run on; the CLI uses it too");
    });
    cmds
}

impl StudioApp {
    /// Reads the default device from the store into `settings.device` (the store wins). A GPU
    /// chosen by a version that kept the device only in eframe's settings moves into the store
    /// once, when the store has none yet.
    pub(super) fn load_default_device(&mut self) {
        let Some(store) = &self.store else { return };
        let unset = matches!(store.setting(engine::devices::DEFAULT_DEVICE_KEY), Ok(None));
        if unset && self.settings.device.starts_with("cuda") {
            // A device this machine cannot use is refused; the store's `auto` then stands.
            let _ = engine::devices::set_default_device(store, &self.settings.device);
        }
        match engine::devices::default_device(store) {
            Ok(d) => self.settings.device = d,
            Err(e) => self.error("Cannot read the default device", e.to_string()),
        }
    }

    /// Keeps `device` as the default device in the store; on refusal the stored one stays and
    /// the error is shown.
    pub(super) fn store_default_device(&mut self, device: &str) {
        let Some(store) = &self.store else { return };
        if let Err(e) = engine::devices::set_default_device(store, device) {
            self.error("Cannot set the default device", e.to_string());
            self.load_default_device();
        }
    }

    /// The device a training job uses: the default device resolved (`auto` → `cuda:0` when a
    /// GPU is usable, else `cpu`), like a batch's; the error says why it cannot be used.
    pub(super) fn training_device(&self) -> Result<String, String> {
        match &self.store {
            Some(store) => engine::devices::run_device(None, store).map_err(|e| e.to_string()),
            None => Ok(self.settings.device.clone()),
        }
    }

    /// The run toolbar's target: "default" (the default device), or one device for the
    /// batches ▶ Run submits from now on.
    pub(super) fn run_device_ui(&mut self, ui: &mut egui::Ui) {
        let l = ui.label("device");
        egui::ComboBox::from_id_salt("run-device")
            .width(80.0)
            .selected_text(self.run_device.as_deref().unwrap_or("default"))
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut self.run_device, None, "default")
                    .on_hover_text(format!("the default device ({})", self.settings.device));
                for t in self.devices.targets() {
                    let text = t.clone();
                    ui.selectable_value(&mut self.run_device, Some(t), text);
                }
            })
            .response
            .labelled_by(l.id)
            .on_hover_text("The device the next runs use for nodes whose device is `auto`");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_in_gib() {
        assert_eq!(gib(24 << 30), "24.0 GiB");
        assert_eq!(gib(3 << 29), "1.5 GiB");
    }
}
