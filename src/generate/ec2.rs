//! EC2 instances: launches, Elastic IP associations, instance-profile issuances and refreshes, and the calls made with instance credentials on and off the host (v1 and v1.1 shapes).

use super::*;

impl Sim {
    pub(super) fn ec2_launch(&mut self) -> bool {
        let target = (self.accounts.len() * INSTANCES_PER_ACCOUNT).min(INSTANCE_CAP);
        if self.instances.len() >= target {
            if !self.ctx.chance(250) {
                return false;
            }
            // Terminate one to make room.
            let i = self.ctx.index(self.instances.len());
            self.instances.swap_remove(i);
        }
        let Some((a, u)) = self.random_user() else {
            return false;
        };
        let ec2_role = HUMAN_ROLES.len() + self.ctx.index(EC2_ROLES.len());
        let instance_id = format!("i-0{}", self.ctx.hex(16));
        let private_ip = format!(
            "10.{}.{}.{}",
            a % 256,
            self.ctx.below(256),
            self.ctx.between(4, 254)
        );
        let mut public_ip = ip_in(INSTANCE_NETS, self.ctx.rng.u64(..));
        let mut eip = self.ctx.chance(500);
        let mut net = Net::Public;
        let mut ipv6 = None;
        if self.v11 {
            public_ip = aws_v4(self.ctx.rng.u64(..));
            net = match self.ctx.below(1000) {
                0..250 => Net::VpceOnly,
                250..450 => Net::Nat,
                450..600 => Net::DualStack,
                _ => Net::Public,
            };
            match net {
                Net::VpceOnly => {
                    // No public address: its "own" address is the private one.
                    eip = false;
                    public_ip = private_ip.clone();
                }
                Net::Nat => {
                    eip = false;
                    if let Some(v) = self.accounts.get(a).and_then(|x| x.v11.as_ref()) {
                        public_ip = v.nat_ip.clone();
                    }
                }
                Net::DualStack => ipv6 = Some(aws_v6(self.ctx.rng.u64(..))),
                Net::Public => {}
            }
        }
        let Some(acct) = self.accounts.get(a) else {
            return false;
        };
        let Some(user) = acct.users.get(u) else {
            return false;
        };
        let ctx = &mut self.ctx;
        let line = run_instances_line(ctx, user, acct, ec2_role, &instance_id, &private_ip);
        let truth = key_truth(&user.key, 0, Kind::Ec2Launch, false, false);
        let eip_line =
            eip.then(|| associate_address_line(ctx, user, acct, &instance_id, Some(&public_ip)));
        self.emit(line, truth.clone());
        if let Some(l) = eip_line {
            self.ctx.now = self.ctx.now.saturating_add(1);
            self.emit(l, truth);
        }
        self.mark_used(Caller::User(a, u));
        // The instance boots, then EC2 fetches its role credentials.
        self.ctx.now = self.ctx.now.saturating_add(self.ctx.between(2, 20) as i64);
        let acct_id = self.account_id(a);
        let key = self.new_key("ASIA", acct_id);
        let dur = self.ctx.duration();
        let ua = self.ctx.pick(EC2_UAS);
        let root = format!("ec2:{instance_id}");
        let mut cred = self.role_cred(
            Kind::Ec2Issue,
            a,
            ec2_role,
            &instance_id,
            root,
            1,
            public_ip,
            ua,
            key,
            dur,
        );
        cred.ec2 = Some(Box::new(Ec2 {
            private_ip,
            first_use: None,
            net,
            ipv6,
            moved: false,
        }));
        let line = self.service_assume_role(&cred, ec2_role, EC2);
        self.emit(line, none_truth(Kind::Ec2Issue));
        if self.instances.len() >= INSTANCE_CAP {
            let i = self.ctx.index(self.instances.len());
            self.instances.swap_remove(i);
        }
        self.push_fresh(Fresh::Instance(cred.id));
        self.instances.push(cred);
        true
    }

    /// The instance's credentials expired: EC2 fetches a new set.
    pub(super) fn ec2_refresh(&mut self, i: usize) -> bool {
        if i >= self.instances.len() {
            return false;
        }
        // Take the instance out while its issuance is written, then put it back.
        let mut cred = self.instances.swap_remove(i);
        let role = match cred.ident {
            Ident::Role(r) => r,
            _ => HUMAN_ROLES.len(),
        };
        let acct_id = self.account_id(cred.account);
        cred.key = self.new_key("ASIA", acct_id);
        cred.id = self.next_id();
        cred.creation = iso(self.ctx.now);
        cred.expires = self.ctx.now.saturating_add(self.ctx.duration() as i64);
        cred.used = false;
        let line = self.service_assume_role(&cred, role, EC2);
        self.emit(line, none_truth(Kind::Ec2Issue));
        self.push_fresh(Fresh::Instance(cred.id));
        self.instances.push(cred);
        true
    }

    // --- v1.1 shapes ----------------------------------------------------------

    /// One of the shapes only the v1.1 mix has.
    pub(super) fn v11_step(&mut self) -> bool {
        match self.ctx.below(1000) {
            0..150 => self.ci_call(),
            150..250 => self.service_linked(),
            250..330 => self.sso_sign_in(),
            330..420 => self.sso_unobserved(),
            420..500 => self.fake_instance(),
            500..600 => self.same_second_chain(),
            _ => self.ec2_call(),
        }
    }

    /// The CI user's long-term key, from behind the account's NAT gateway.
    pub(super) fn ci_call(&mut self) -> bool {
        let a = self.ctx.index(self.accounts.len());
        let Some(acct) = self.accounts.get(a) else {
            return false;
        };
        let Some(v) = acct.v11.as_deref() else {
            return false;
        };
        let user = &v.ci;
        let line = call_line(
            &mut self.ctx,
            &Who::User(user),
            acct,
            &user.ip,
            user.ua,
            None,
        );
        let truth = key_truth(&user.key, 0, Kind::NatUser, false, false);
        self.emit(line, truth);
        true
    }

    /// A call with instance credentials, v1.1 mix: by the way the instance
    /// reaches AWS, and now and then stolen (SSRF, the attacker user's
    /// address, a pivot through `AssumeRole`) or its Elastic IP moved.
    pub(super) fn ec2_call_v11(&mut self, i: usize) -> bool {
        #[derive(Clone, Copy, PartialEq, Eq)]
        enum Act {
            Own,
            V6,
            Vpce,
            UserIp,
            Ssrf,
            Pivot,
            Move,
        }
        let now = self.ctx.now;
        let Some(inst) = self.instances.get(i) else {
            return false;
        };
        let Some(e) = inst.ec2.as_deref() else {
            return false;
        };
        let (net, used, dual) = (e.net, inst.used, e.ipv6.is_some());
        let theft = e
            .first_use
            .is_some_and(|f| f.saturating_add(self.disorder) < now);
        let account = inst.account;
        let r = self.ctx.below(1000);
        let act = if !used {
            Act::Own
        } else {
            match (net, r) {
                (Net::VpceOnly, 0..900) => Act::Vpce,
                (Net::VpceOnly, 900..960) => Act::Ssrf,
                (Net::VpceOnly, 960..990) => Act::Pivot,
                (Net::VpceOnly, _) => Act::Vpce,
                (_, 0..600) => Act::Own,
                (_, 600..720) if dual => Act::V6,
                (_, 600..720) => Act::Own,
                (_, 720..860) => Act::Vpce,
                (_, 860..910) => Act::UserIp,
                (_, 910..950) => Act::Ssrf,
                (_, 950..970) => Act::Pivot,
                (Net::Public | Net::DualStack, 970..990) => Act::Move,
                _ => Act::Own,
            }
        };
        let act = match act {
            Act::UserIp | Act::Ssrf | Act::Pivot if !theft => Act::Own,
            a => a,
        };
        let act = match (act, net) {
            (Act::Own, Net::VpceOnly) => Act::Vpce,
            (a, _) => a,
        };
        match act {
            Act::Move => return self.eip_move(i),
            Act::Pivot => return self.ec2_pivot(i),
            Act::UserIp => {
                // The address belongs to the attacker user: make sure it was
                // used, in an earlier second, within the hour.
                let recent = self
                    .accounts
                    .get(account)
                    .and_then(|x| x.users.first())
                    .and_then(|u| u.last_call)
                    .is_some_and(|t| t.saturating_add(3600) > now && t < now);
                if !recent {
                    self.user_call(account, 0);
                    self.ctx.now = self.ctx.now.saturating_add(1);
                }
            }
            _ => {}
        }
        let ssrf_ip = {
            let h = self.ctx.below(254);
            format!("{}.{}.{}.{}", SSRF_NET[0], SSRF_NET[1], SSRF_NET[2], h + 1)
        };
        let Some(inst) = self.instances.get(i) else {
            return false;
        };
        let Some(acct) = self.accounts.get(account) else {
            return false;
        };
        let Some(e) = inst.ec2.as_deref() else {
            return false;
        };
        let attacker = acct.users.first();
        let (ip, ua, vpce, kind) = match act {
            Act::Vpce => (
                e.private_ip.as_str(),
                inst.ua,
                Some((acct.vpce.as_str(), acct.id_str.as_str())),
                Kind::Ec2Vpce,
            ),
            Act::V6 => (
                e.ipv6.as_deref().unwrap_or(&inst.ip),
                inst.ua,
                None,
                Kind::Ec2Ipv6,
            ),
            Act::UserIp => (
                attacker.map_or("", |u| u.ip.as_str()),
                ATTACKER_UA,
                None,
                Kind::Ec2Offhost,
            ),
            Act::Ssrf => (ssrf_ip.as_str(), ATTACKER_UA, None, Kind::Ec2Ssrf),
            _ => {
                let kind = match net {
                    Net::Nat => Kind::Ec2Nat,
                    _ if e.moved => Kind::Ec2Moved,
                    _ => Kind::Ec2Onhost,
                };
                (inst.ip.as_str(), inst.ua, None, kind)
            }
        };
        let line = call_line(&mut self.ctx, &Who::Cred(inst), acct, ip, ua, vpce);
        let mut truth = cred_info(inst).truth(kind);
        match kind {
            Kind::Ec2Offhost => {
                truth.offhost = true;
                truth.offhost_reason = Some("ip_used_by_other_identity");
                truth.offhost_other_identity = attacker.map(|u| u.arn.clone());
            }
            Kind::Ec2Ssrf => {
                truth.offhost = true;
                truth.offhost_reason = Some("outside_aws");
            }
            _ => {}
        }
        self.emit(line, truth);
        self.mark_used(Caller::Instance(i));
        true
    }

    /// Stolen instance credentials call `AssumeRole` from the attacker's
    /// address (outside AWS, one per pivot); the new role session is the
    /// attacker's, used from there.
    pub(super) fn ec2_pivot(&mut self, i: usize) -> bool {
        let Some(account) = self.instances.get(i).map(|c| c.account) else {
            return false;
        };
        self.pivots = self.pivots.wrapping_add(1);
        let p = permute32(self.pivots, self.seed) & 0x00ff_ffff;
        let ip = format!(
            "{PIVOT_NET}.{}.{}.{}",
            (p >> 16) & 0xff,
            (p >> 8) & 0xff,
            1 + (p & 0xff) % 254
        );
        let role = self.ctx.index(HUMAN_ROLES.len());
        let session = self.session_name("session");
        let start = self.out.len();
        let ok = self.issue_assume_role_via(
            Caller::Instance(i),
            account,
            role,
            Some(session),
            Kind::PivotSession,
            None,
            Some((ip, ATTACKER_UA)),
        );
        if !ok {
            return false;
        }
        if let Some((_, rec)) = self.out.get_mut(start) {
            rec.truth.kind = Kind::Ec2Pivot.name();
            rec.truth.offhost = true;
            rec.truth.offhost_reason = Some("outside_aws");
        }
        if let Some(c) = self.creds.last_mut() {
            c.ancestor = true;
        }
        // The session's calls (which make the address an identity's) come
        // in later seconds than the flagged call.
        self.ctx.now = self.ctx.now.saturating_add(1);
        true
    }

    /// `AssociateAddress` by `allocationId` alone (no `publicIp` anywhere in
    /// the record): the instance's public IPv4 address changes. In a second
    /// of its own, so no call from the old address sorts after it.
    pub(super) fn eip_move(&mut self, i: usize) -> bool {
        let Some(account) = self.instances.get(i).map(|c| c.account) else {
            return false;
        };
        let Some(u) = self.random_user_in(account) else {
            return false;
        };
        let new_ip = aws_v4(self.ctx.rng.u64(..));
        self.ctx.now = self.ctx.now.saturating_add(1);
        let (Some(acct), Some(inst)) = (self.accounts.get(account), self.instances.get(i)) else {
            return false;
        };
        let Some(user) = acct.users.get(u) else {
            return false;
        };
        let iid = inst.root.strip_prefix("ec2:").unwrap_or("");
        let line = associate_address_line(&mut self.ctx, user, acct, iid, None);
        let truth = key_truth(&user.key, 0, Kind::Ec2EipMove, false, false);
        self.emit(line, truth);
        self.mark_used(Caller::User(account, u));
        self.ctx.now = self.ctx.now.saturating_add(1);
        if let Some(inst) = self.instances.get_mut(i) {
            inst.ip = new_ip;
            if let Some(e) = inst.ec2.as_mut() {
                e.moved = true;
            }
        }
        true
    }
}
