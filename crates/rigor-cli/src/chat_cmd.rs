//! `rigor chat [--repo DIR] [--resume]`: the interactive terminal session (`rigor_chat`), wired
//! like `rigor run`: the same configuration, provider, tool sources, sandbox and policy
//! ([`crate::run_wiring`], [`crate::tool_sources`]); the session is a conversation run
//! (`rigor_core::conversation`) recorded in `.rigor/runs/<id>/`.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use anyhow::{Result, bail};
use async_trait::async_trait;
use clap::Args;
use rigor_core::config::{AgentSettings, Config};
use rigor_core::conversation::{Conversation, Resume};
use rigor_core::run::RunRequest;
use rigor_core::session::Session;
use rigor_core::workspace::WorkspaceMode;
use rigor_llm::{ChatRequest, ChatResponse, Provider, ProviderError, StreamSink};

use crate::{BudgetArgs, approve, mcp_sources, repo_root, tool_sources};

/// `rigor chat`'s flags.
#[derive(Args)]
pub struct ChatArgs {
    /// The repository, or a directory inside it.
    #[arg(long, default_value = ".")]
    repo: PathBuf,
    /// Continue the last conversation of this repository (its messages and its changes).
    #[arg(long)]
    resume: bool,
    /// The model, as provider:model (`/model NAME` changes it during the session).
    #[arg(long, short)]
    model: Option<String>,
    /// The prompt: `compact` or `full` [default: chosen for the model, or `agent.prompt`].
    #[arg(long, value_name = "PROFILE", value_parser = crate::parse_prompt_profile)]
    prompt: Option<rigor_core::prompt::PromptProfile>,
    #[command(flatten)]
    budgets: BudgetArgs,
    #[command(flatten)]
    safety: approve::SafetyArgs,
}

/// Runs the chat until the user quits, then says where the sessions are recorded.
pub async fn chat(args: ChatArgs) -> Result<u8> {
    if !args.repo.is_dir() {
        bail!("repository {} does not exist or is not a directory", args.repo.display());
    }
    let root = repo_root(&args.repo);
    let config = crate::load_config(&root)?;
    let (_, provider, settings) =
        crate::run_wiring(&config, args.model.as_deref(), args.prompt, &args.budgets, &args.safety)?;
    if args.resume && Resume::last(&root).map_err(anyhow::Error::msg)?.is_none() {
        bail!("no conversation to resume in {}: start one with `rigor chat`", root.display());
    }
    let mut host = ChatHost { repo: args.repo.clone(), root, config, settings, provider: Switchable::new(provider) };
    let reports = tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(rigor_chat::run(&mut host, args.resume))
    })
    .map_err(anyhow::Error::msg)?;
    for report in &reports {
        println!("session recorded in {}", report.run_dir.display());
    }
    Ok(0)
}

/// The CLI's side of the chat.
struct ChatHost {
    repo: PathBuf,
    root: PathBuf,
    config: Config,
    settings: AgentSettings,
    provider: Arc<Switchable>,
}

#[async_trait]
impl rigor_chat::Host for ChatHost {
    async fn start(&mut self, resume: bool) -> Result<Session, String> {
        let resume = if resume { Resume::last(&self.root)? } else { None };
        let request = RunRequest {
            repo: self.repo.clone(),
            issue: String::new(),
            mode: WorkspaceMode::Worktree,
            start: None,
            apply: false,
            keep_workspace: false,
            settings: self.settings.clone(),
            run_id: None,
            shell_env: Vec::new(),
            sources: tool_sources(None, mcp_sources(&self.config, &self.settings.sandbox)),
            replay_of: None,
            user_messages: Vec::new(),
            decline: None,
            conversation: Some(Conversation { wait: true, resume }),
        };
        // Held commands are asked in the chat (y / n / a).
        Ok(Session::start(request, self.provider.clone(), true))
    }

    async fn switch_model(&mut self, name: &str) -> Result<String, String> {
        let model = self.config.choose_model(Some(name)).map_err(|e| e.to_string())?;
        let provider = crate::model_cmd::provider_for(&self.config, &model, false).map_err(|e| format!("{e:#}"))?;
        Ok(self.provider.switch(Arc::from(provider)))
    }

    async fn apply(&mut self, patch: &str) -> Result<(), String> {
        rigor_core::workspace::apply_patch_to_checkout(&self.root, patch).await.map_err(|e| e.to_string())
    }
}

/// The session's provider, which `/model` replaces for the next turns.
struct Switchable(RwLock<Arc<dyn Provider>>);

impl Switchable {
    fn new(provider: Box<dyn Provider>) -> Arc<Self> {
        Arc::new(Self(RwLock::new(Arc::from(provider))))
    }

    fn current(&self) -> Arc<dyn Provider> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Uses `provider` from now on; returns its id.
    fn switch(&self, provider: Arc<dyn Provider>) -> String {
        let id = provider.id();
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = provider;
        id
    }
}

#[async_trait]
impl Provider for Switchable {
    fn id(&self) -> String {
        self.current().id()
    }

    fn context_window(&self) -> u64 {
        self.current().context_window()
    }

    async fn chat(&self, request: &ChatRequest, sink: StreamSink<'_>) -> Result<ChatResponse, ProviderError> {
        self.current().chat(request, sink).await
    }

    fn action_hint(&self) -> Option<String> {
        self.current().action_hint()
    }
}
