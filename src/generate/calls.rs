//! Ordinary API calls made with each kind of credential (user keys, temporary sets, instance credentials, AWS services).

use super::*;

impl Sim {
    pub(super) fn plain_call(&mut self) -> bool {
        match self.random_user() {
            Some((a, u)) => self.user_call(a, u),
            None => false,
        }
    }

    pub(super) fn user_call(&mut self, a: usize, u: usize) -> bool {
        let Some(acct) = self.accounts.get(a) else {
            return false;
        };
        let Some(user) = acct.users.get(u) else {
            return false;
        };
        let line = call_line(
            &mut self.ctx,
            &Who::User(user),
            acct,
            &user.ip,
            user.ua,
            None,
        );
        let truth = key_truth(&user.key, 0, Kind::Plain, false, false);
        self.emit(line, truth);
        self.mark_used(Caller::User(a, u));
        true
    }

    pub(super) fn backdoor_call(&mut self) -> bool {
        let a = self.ctx.index(self.accounts.len());
        let n = self.accounts.get(a).map_or(0, |x| x.backdoors.len());
        if n == 0 {
            return false;
        }
        let k = self.ctx.index(n);
        self.backdoor_call_at(a, k)
    }

    pub(super) fn backdoor_call_at(&mut self, a: usize, k: usize) -> bool {
        let Some(acct) = self.accounts.get(a) else {
            return false;
        };
        let Some(user) = acct.backdoors.get(k) else {
            return false;
        };
        let line = call_line(
            &mut self.ctx,
            &Who::User(user),
            acct,
            &user.ip,
            user.ua,
            None,
        );
        let truth = key_truth(&user.key, 0, Kind::CreatedKey, false, false);
        self.emit(line, truth);
        true
    }

    pub(super) fn cred_call(&mut self) -> bool {
        if self.creds.is_empty() {
            return false;
        }
        let i = self.ctx.index(self.creds.len());
        self.cred_call_at(i)
    }

    pub(super) fn cred_call_at(&mut self, i: usize) -> bool {
        let Some(c) = self.creds.get(i) else {
            return false;
        };
        if self.ctx.now >= c.expires {
            self.creds.swap_remove(i);
            return false;
        }
        let Some(acct) = self.accounts.get(c.account) else {
            return false;
        };
        let line = call_line(&mut self.ctx, &Who::Cred(c), acct, &c.ip, c.ua, None);
        let truth = cred_info(c).truth(c.kind);
        self.emit(line, truth);
        self.mark_used(Caller::Cred(i));
        true
    }

    pub(super) fn ec2_call(&mut self) -> bool {
        if self.instances.is_empty() {
            return false;
        }
        let i = self.ctx.index(self.instances.len());
        self.ec2_call_at(i)
    }

    pub(super) fn ec2_call_at(&mut self, i: usize) -> bool {
        let now = self.ctx.now;
        let Some(inst) = self.instances.get(i) else {
            return false;
        };
        if now >= inst.expires {
            if self.ctx.chance(850) {
                return self.ec2_refresh(i);
            }
            self.instances.swap_remove(i);
            return false;
        }
        if self.v11 {
            return self.ec2_call_v11(i);
        }
        let first_use = inst.ec2.as_ref().and_then(|e| e.first_use);
        let r = self.ctx.below(1000);
        let kind = if !inst.used || r < 800 {
            Kind::Ec2Onhost
        } else if r < 960 {
            Kind::Ec2Vpce
        } else if first_use.is_some_and(|f| f.saturating_add(self.disorder) < now) {
            Kind::Ec2Offhost
        } else {
            Kind::Ec2Onhost
        };
        let account = inst.account;
        if kind == Kind::Ec2Offhost {
            // The attacker IP belongs to an IAM user: make sure it was seen recently.
            let recent = self
                .accounts
                .get(account)
                .and_then(|x| x.users.first())
                .and_then(|u| u.last_call)
                .is_some_and(|t| t.saturating_add(3600) > now);
            if !recent {
                self.user_call(account, 0);
            }
        }
        let Some(inst) = self.instances.get(i) else {
            return false;
        };
        let Some(acct) = self.accounts.get(account) else {
            return false;
        };
        let Some(ec2) = inst.ec2.as_deref() else {
            return false;
        };
        let line = match kind {
            Kind::Ec2Vpce => call_line(
                &mut self.ctx,
                &Who::Cred(inst),
                acct,
                &ec2.private_ip,
                inst.ua,
                Some((&acct.vpce, &acct.id_str)),
            ),
            Kind::Ec2Offhost => {
                let ip = acct.users.first().map_or("", |u| u.ip.as_str());
                call_line(&mut self.ctx, &Who::Cred(inst), acct, ip, ATTACKER_UA, None)
            }
            _ => call_line(
                &mut self.ctx,
                &Who::Cred(inst),
                acct,
                &inst.ip,
                inst.ua,
                None,
            ),
        };
        let mut truth = cred_info(inst).truth(kind);
        if kind == Kind::Ec2Offhost {
            // SPEC v1.1 with the AWS ranges turned off: step 5.
            truth.offhost = true;
            truth.offhost_reason = Some("new_ip_for_instance");
        }
        self.emit(line, truth);
        if let Some(inst) = self.instances.get_mut(i) {
            inst.used = true;
            if let Some(e) = inst.ec2.as_mut() {
                e.first_use.get_or_insert(now);
            }
        }
        true
    }

    pub(super) fn aws_service_call(&mut self) {
        let a = self.ctx.index(self.accounts.len());
        let Some(acct) = self.accounts.get(a) else {
            return;
        };
        let i = self.ctx.index(SERVICE_CALLS.len());
        let Some(&(by, ip, source, name)) = SERVICE_CALLS.get(i) else {
            return;
        };
        let ctx = &mut self.ctx;
        let region = region_for(source, acct);
        let mut j = begin(ctx, &Who::Service(by), acct, source, name, region, ip, by);
        j.obj("requestParameters");
        match name {
            "GenerateDataKey" => {
                j.str(
                    "keyId",
                    &format!("arn:aws:kms:{region}:{}:alias/cloudtrail-logs", acct.id_str),
                );
                j.str("keySpec", "AES_256");
            }
            "Decrypt" => {
                j.str("encryptionAlgorithm", "SYMMETRIC_DEFAULT");
            }
            "GetBucketAcl" => {
                j.str("bucketName", &format!("{}-config-logs", acct.id_str));
                j.str("Host", "s3.amazonaws.com");
                j.str("acl", "");
            }
            _ => j.str("roleName", "AWSServiceRoleForAccessAnalyzer"),
        }
        j.end();
        j.raw("responseElements", "null");
        let line = finish(
            j,
            ctx,
            &Tail {
                read_only: true,
                recipient: &acct.id_str,
                host: None,
                ..Tail::default()
            },
        );
        let truth = none_truth(Kind::AwsService);
        self.emit(line, truth);
    }

    // --- issuance ----------------------------------------------------------
}
