//! vCenter tasks: starting a `*_Task` method, reading `Task.info`, and waiting for the end.

use tokio::time::Instant;

use super::envelope::PropSpec;
use super::fault::{Error, Fault};
use super::inventory::ObjectContent;
use super::xml::{MoRef, Node};
use super::Core;
use crate::{unknown_task, TaskRef, TaskStatus, VcError, VcResult, VmRef};

const FIRST_POLL_DELAY: std::time::Duration = std::time::Duration::from_millis(50);
const MAX_POLL_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

const INFO_PATHS: &[&str] = &["info.state", "info.progress", "info.result", "info.error", "info.entityName"];

fn parse_info(info: &ObjectContent) -> TaskInfo {
    match info.text("info.state") {
        Some("success") => TaskInfo::Succeeded { result: info.props.get("info.result").and_then(Node::moref) },
        Some("error") => TaskInfo::Failed {
            fault: info.props.get("info.error").map(Fault::from_localized).unwrap_or_else(|| Fault {
                kind: "VimFault".into(),
                message: "the task failed without saying why".into(),
                detail: Node::default(),
            }),
            entity: info.text("info.entityName").unwrap_or("").to_owned(),
        },
        // queued, running, or a state this client does not know yet
        _ => TaskInfo::Running { percent: info.text("info.progress").and_then(|p| p.parse::<i64>().ok()).map(|p| p.clamp(0, 100) as u8) },
    }
}

/// What one read of `Task.info` says.
pub(crate) enum TaskInfo {
    Running {
        percent: Option<u8>,
    },
    Succeeded {
        result: Option<MoRef>,
    },
    /// The fault, and the name of the object the task ran on (for the message).
    Failed {
        fault: Fault,
        entity: String,
    },
}

impl Core {
    /// Calls a `*_Task` method and returns the task it started. Safe to repeat after a
    /// NotAuthenticated failure: vCenter refused before starting anything.
    pub(crate) async fn start_task(&self, this: &MoRef, method: &str, args: &str) -> Result<MoRef, Error> {
        let reply = self.with_session(|s| async move { self.invoke(&s, method, this, args).await }).await?;
        reply.child("returnval").and_then(Node::moref).ok_or_else(|| Error::Vc(VcError::Protocol(format!("{method} returned no task"))))
    }

    /// Starts a task and waits for it, all within the configured timeout; returns its result.
    pub(crate) async fn run_task(&self, this: &MoRef, method: &str, args: &str) -> Result<Option<MoRef>, Error> {
        let deadline = Instant::now() + self.cfg.timeout;
        let task = self.start_task(this, method, args).await?;
        self.await_task(&task, deadline).await
    }

    /// Polls the task with a growing pause until it succeeds or fails, or `deadline` passes.
    pub(crate) async fn await_task(&self, task: &MoRef, deadline: Instant) -> Result<Option<MoRef>, Error> {
        let mut pause = FIRST_POLL_DELAY;
        loop {
            match self.task_info(task).await? {
                TaskInfo::Succeeded { result } => return Ok(result),
                TaskInfo::Failed { fault, .. } => return Err(fault.into()),
                TaskInfo::Running { .. } => {}
            }
            if Instant::now() + pause > deadline {
                return Err(VcError::StillRunning { task: task.value.clone(), secs: self.timeout_secs() }.into());
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_POLL_DELAY);
        }
    }

    /// One read of `info`. A task vCenter no longer knows is [`unknown_task`]: real vCenter
    /// faults ManagedObjectNotFound, vcsim leaves the object out of the result.
    pub(crate) async fn task_info(&self, task: &MoRef) -> Result<TaskInfo, Error> {
        let objects = self
            .with_session(|s| async move {
                let spec = PropSpec { ty: "Task", paths: INFO_PATHS };
                self.retrieve_objects(&s, &[spec], std::slice::from_ref(task)).await
            })
            .await;
        let objects = match objects {
            Err(e) if e.fault().is_some_and(|f| f.is("ManagedObjectNotFound")) => return Err(unknown_task(&task.value).into()),
            other => other?,
        };
        let info = objects.into_iter().next().ok_or_else(|| Error::Vc(unknown_task(&task.value)))?;
        Ok(parse_info(&info))
    }

    /// [`crate::Vcenter::task_status`]: the info, with a created VM's name read back.
    pub(crate) async fn read_task_status(&self, task: &TaskRef) -> VcResult<TaskStatus> {
        let moref = MoRef::new("Task", &task.moref);
        let info = self.task_info(&moref).await.map_err(|e| e.into_vc(&task.moref, "reading a task"))?;
        Ok(match info {
            TaskInfo::Running { percent } => TaskStatus::Running { percent },
            TaskInfo::Failed { fault, entity } => TaskStatus::Failed(fault.into_vc(&entity, "that task")),
            TaskInfo::Succeeded { result } => TaskStatus::Succeeded {
                vm: match result {
                    Some(r) if r.ty == "VirtualMachine" => self.vm_name(&r).await?,
                    _ => None,
                },
            },
        })
    }

    /// The VM's name, or None when it no longer exists.
    async fn vm_name(&self, vm: &MoRef) -> VcResult<Option<VmRef>> {
        let read = self
            .with_session(|s| async move {
                let spec = PropSpec { ty: "VirtualMachine", paths: &["name"] };
                self.retrieve_objects(&s, &[spec], std::slice::from_ref(vm)).await
            })
            .await;
        let objects = match read {
            Err(e) if e.fault().is_some_and(|f| f.is("ManagedObjectNotFound")) => return Ok(None),
            other => other.map_err(|e| e.into_vc(&vm.value, "reading a new VM"))?,
        };
        Ok(objects.first().and_then(|o| Some(VmRef::new(o.obj.value.clone(), o.text("name")?.to_owned()))))
    }
}

#[cfg(test)]
mod tests {
    use super::super::xml::parse_body;
    use super::*;

    fn info(props: &[(&str, &str)]) -> ObjectContent {
        ObjectContent {
            obj: MoRef::new("Task", "task-1"),
            props: props
                .iter()
                .map(|(k, v)| {
                    let val = Node { name: "val".into(), text: v.to_string(), ..Node::default() };
                    (k.to_string(), val)
                })
                .collect(),
        }
    }

    #[test]
    fn running_and_queued_tasks_report_progress() {
        let running = parse_info(&info(&[("info.state", "running"), ("info.progress", "42")]));
        assert!(matches!(running, TaskInfo::Running { percent: Some(42) }));
        let queued = parse_info(&info(&[("info.state", "queued")]));
        assert!(matches!(queued, TaskInfo::Running { percent: None }));
        let odd = parse_info(&info(&[("info.state", "running"), ("info.progress", "250")]));
        assert!(matches!(odd, TaskInfo::Running { percent: Some(100) }));
    }

    #[test]
    fn failed_task_without_error_still_says_something() {
        match parse_info(&info(&[("info.state", "error"), ("info.entityName", "web")])) {
            TaskInfo::Failed { fault, entity } => {
                assert_eq!(entity, "web");
                assert!(!fault.message.is_empty());
            }
            _ => panic!("not failed"),
        }
    }

    #[test]
    fn duplicate_name_task_error_is_typed() {
        let text = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><val xsi:type="LocalizedMethodFault"><fault xsi:type="DuplicateName"><name>web-01</name><object type="Folder">group-v4</object></fault><localizedMessage>The name 'web-01' already exists.</localizedMessage></val></soapenv:Body></soapenv:Envelope>"#;
        let fault = Fault::from_localized(&parse_body(text).unwrap());
        assert_eq!(fault.into_vc("iaas", "that task"), VcError::DuplicateName { name: "web-01".into() });
    }
}
