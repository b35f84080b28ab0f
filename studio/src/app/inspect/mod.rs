//! The Inspection window: train a defect classifier on a labelled folder and evaluate a trained
//! detector on held-out real images, through the same engine jobs as `defect-studio
//! train-classifier` ([`engine::inspect::classifier::run_classifier`]) and `defect-studio
//! evaluate` ([`engine::inspect::evaluate::run_evaluation`]).
//!
//! [`InspectPanel::inspect_ui`] (in [`view`]) draws the form, the live loss and accuracy curves,
//! and the evaluation's metrics with its ROC and PR curves (`egui_plot`), and returns
//! [`InspectCommand`]s; [`InspectPanel::apply`] starts the jobs, one at a time: a training goes
//! to the engine [`Worker`] (queued like the LoRA trainings and batches, one job on the device at
//! a time; the app hands its [`DetectorEvent`]s to [`InspectPanel::on_train_event`] and
//! [`InspectPanel::on_trained`]), an evaluation (inference only) runs on a thread as the Explore
//! window's jobs do, and [`InspectPanel::poll`] takes its events every frame.

mod view;

use std::path::PathBuf;
use std::sync::mpsc;

use engine::inspect::classifier::{
    ClassifierConfig, ClassifierJob, DetectorEvent, DetectorOutcome,
};
use engine::inspect::evaluate::{run_evaluation, EvalJob, EvalOptions, EvalOutcome};
use engine::run::DetectorJob;
use engine::Worker;

/// The training form (the engine's [`ClassifierConfig`] plus where and on what).
#[derive(Clone, Debug, PartialEq)]
pub struct InspectForm {
    /// The labelled training folder.
    pub data: String,
    /// The model file to write (`.safetensors`).
    pub out: String,
    /// `cpu`, `cuda`, `cuda:N`.
    pub device: String,
    pub cfg: ClassifierConfig,
    /// The folder of real, held-out images to evaluate on.
    pub eval_data: String,
    /// The model to evaluate (filled with the trained model when a training ends).
    pub eval_model: String,
}

impl Default for InspectForm {
    fn default() -> Self {
        InspectForm {
            data: String::new(),
            out: String::new(),
            device: "cpu".into(),
            cfg: ClassifierConfig::default(),
            eval_data: String::new(),
            eval_model: String::new(),
        }
    }
}

/// What the window asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum InspectCommand {
    /// Train a classifier with the form's settings.
    Train(Box<InspectForm>),
    /// Evaluate a model on a folder.
    Evaluate {
        model: PathBuf,
        data: PathBuf,
        device: String,
    },
    /// Stop the running training (after its current step).
    Cancel,
}

/// Where the current job is.
#[derive(Clone, Debug, PartialEq)]
pub enum JobState {
    Idle,
    /// A phase that takes a while, with what it is doing.
    Busy(String),
    Done(String),
    Failed(String),
}

enum JobMsg {
    Scored(usize, usize),
    Evaluated(Box<Result<EvalOutcome, String>>),
}

/// The window's state.
pub struct InspectPanel {
    pub open: bool,
    pub form: InspectForm,
    pub state: JobState,
    /// `(step index over the run, loss)` of the running or last training.
    pub losses: Vec<(usize, f32)>,
    /// Per epoch: `(epoch, train accuracy, validation balanced accuracy)`.
    pub accuracy: Vec<(usize, f32, Option<f32>)>,
    pub labels: Vec<String>,
    /// The last evaluation.
    pub evaluation: Option<EvalOutcome>,
    /// The ROC points the plot drew last frame (what the user sees).
    pub drawn_roc: Vec<[f64; 2]>,
    /// The store jobs record into (`None`: the user store).
    pub store: Option<PathBuf>,
    /// A message about the form (what is missing).
    pub message: Option<String>,
    /// The evaluation in flight.
    rx: Option<mpsc::Receiver<JobMsg>>,
    /// A training queued on or running in the worker.
    training: bool,
}

impl Default for InspectPanel {
    fn default() -> Self {
        InspectPanel {
            open: false,
            form: InspectForm::default(),
            state: JobState::Idle,
            losses: Vec::new(),
            accuracy: Vec::new(),
            labels: Vec::new(),
            evaluation: None,
            drawn_roc: Vec::new(),
            store: None,
            message: None,
            rx: None,
            training: false,
        }
    }
}

impl InspectPanel {
    /// Whether a job is queued or running.
    pub fn busy(&self) -> bool {
        self.rx.is_some() || self.training
    }

    fn store_path(&self) -> PathBuf {
        self.store.clone().unwrap_or_else(engine::paths::store_path)
    }

    /// Carries out a command from [`InspectPanel::inspect_ui`]; trainings go to `worker`.
    pub fn apply(&mut self, ctx: &egui::Context, cmd: InspectCommand, worker: &Worker) {
        match cmd {
            InspectCommand::Cancel => {
                if self.training {
                    worker.cancel();
                }
            }
            _ if self.busy() => self.message = Some("a job is running: wait or stop it".into()),
            InspectCommand::Train(form) => self.start_training(*form, worker),
            InspectCommand::Evaluate {
                model,
                data,
                device,
            } => self.start_evaluation(ctx, model, data, device),
        }
    }

    fn spawn(&mut self, ctx: &egui::Context, job: impl FnOnce(&dyn Fn(JobMsg)) + Send + 'static) {
        let (tx, rx) = mpsc::channel();
        let ctx = ctx.clone();
        std::thread::spawn(move || {
            let send = |m: JobMsg| {
                let _ = tx.send(m);
                ctx.request_repaint();
            };
            job(&send);
        });
        self.rx = Some(rx);
        self.message = None;
    }

    fn start_training(&mut self, form: InspectForm, worker: &Worker) {
        if form.data.trim().is_empty() || form.out.trim().is_empty() {
            self.message = Some("choose a training folder and an output file".into());
            return;
        }
        let job = ClassifierJob {
            data: PathBuf::from(form.data.trim()),
            out: PathBuf::from(form.out.trim()),
            device: form.device.clone(),
            cfg: form.cfg.clone(),
            resume: false,
            store: Some(self.store_path()),
            weights: None,
        };
        self.losses.clear();
        self.accuracy.clear();
        self.labels.clear();
        match worker.submit_detector(DetectorJob::Classifier(job)) {
            Ok(()) => {
                self.training = true;
                self.message = None;
                self.state = JobState::Busy("queued".into());
            }
            Err(e) => self.state = JobState::Failed(e.to_string()),
        }
    }

    fn start_evaluation(
        &mut self,
        ctx: &egui::Context,
        model: PathBuf,
        data: PathBuf,
        device: String,
    ) {
        if model.as_os_str().is_empty() || data.as_os_str().is_empty() {
            self.message = Some("choose a model and a folder of labelled images".into());
            return;
        }
        let job = EvalJob {
            model,
            data,
            device,
            plots: None,
            store: Some(self.store_path()),
            opts: EvalOptions::default(),
        };
        self.state = JobState::Busy("evaluating".into());
        self.spawn(ctx, move |send| {
            let r = run_evaluation(&job, &mut |d, t| send(JobMsg::Scored(d, t)));
            send(JobMsg::Evaluated(Box::new(r.map_err(|e| e.to_string()))));
        });
    }

    /// Takes the running job's events (call every frame).
    pub fn poll(&mut self) {
        while let Some(msg) = self.rx.as_ref().and_then(|rx| rx.try_recv().ok()) {
            self.on_msg(msg);
        }
    }

    fn on_msg(&mut self, msg: JobMsg) {
        match msg {
            JobMsg::Scored(done, total) => {
                self.state = JobState::Busy(format!("scoring {done}/{total} images"));
            }
            JobMsg::Evaluated(r) => {
                self.rx = None;
                match *r {
                    Ok(o) => {
                        self.state = JobState::Done(format!(
                            "evaluated {} images{}",
                            o.record.report.images,
                            o.id.map(|i| format!(", stored as evaluation #{i}"))
                                .unwrap_or_default()
                        ));
                        self.evaluation = Some(o);
                    }
                    Err(e) => self.state = JobState::Failed(e),
                }
            }
        }
    }

    /// The worker's report of a training ended (the error is `cancelled` when it was stopped).
    pub fn on_trained(&mut self, r: Result<DetectorOutcome, String>) {
        self.training = false;
        self.state = match r {
            Ok(o) => {
                self.form.eval_model = o.model.display().to_string();
                JobState::Done(format!(
                    "{} written (best epoch {}{}, sha256 {})",
                    o.model.display(),
                    o.best_epoch,
                    if o.stopped_early {
                        ", stopped early"
                    } else {
                        ""
                    },
                    o.sha256.get(..10).unwrap_or(&o.sha256)
                ))
            }
            Err(e) if e == engine::EngineError::Cancelled.to_string() => {
                JobState::Done("training cancelled".into())
            }
            Err(e) => JobState::Failed(e),
        };
    }

    /// A progress event of the running training, from the worker.
    pub fn on_train_event(&mut self, e: DetectorEvent) {
        match e {
            DetectorEvent::Status(s) => self.state = JobState::Busy(s),
            DetectorEvent::Started {
                labels,
                train,
                val,
                epochs,
                ..
            } => {
                self.state = JobState::Busy(format!(
                    "training on {train} images ({val} for validation), {epochs} epochs"
                ));
                self.labels = labels;
            }
            DetectorEvent::Step {
                epoch,
                step,
                steps,
                loss,
                eta_s,
            } => {
                let k = epoch.saturating_sub(1) * steps + step;
                self.losses.push((k, loss));
                self.state = JobState::Busy(format!(
                    "epoch {epoch}, step {step}/{steps}, loss {loss:.4}, {eta_s:.0} s left"
                ));
            }
            DetectorEvent::Epoch { metrics, .. } => self.accuracy.push((
                metrics.epoch as usize,
                metrics.train_accuracy,
                metrics.val_balanced_accuracy,
            )),
            DetectorEvent::Saved { .. } => {}
        }
    }
}
