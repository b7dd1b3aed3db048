import MailCore
import MailQueue
import MailStore
import NIOCore

extension EngineState {
    /// Delivers a report from the mail system (a DSN, sent from the null
    /// sender) to `recipient`: into the store when the address is the cell's,
    /// else into the outbound spool like any other message.
    func deliverReport(to recipient: String, message bytes: [UInt8]) -> EventLoopFuture<Void> {
        let loop = eventLoop
        guard let address = MailAddress.parse(recipient) else {
            return loop.makeFailedFuture(StoreFailure.storage("bad report recipient \(recipient)"))
        }
        let directory = self.directory
        var users: [String] = []
        var remote: [String] = []
        switch directory.resolve(address) {
        case .deliver(let l, let r):
            users = l
            remote = r
        case .notOurDomain:
            remote = [address.description]
        case .unknown:
            logger.notice("report for an unknown local address dropped", metadata: ["to": "\(recipient)"])
            return loop.makeSucceededVoidFuture()
        }
        let message: IncomingMessage
        do { message = try store.newMessage() } catch { return loop.makeFailedFuture(error) }
        message.write(bytes)
        let now = clock()
        var delivery: Delivery?
        let ids = users.compactMap { store.userID($0) }
        if !ids.isEmpty {
            var quotas: [Int64: Int64] = [:]
            for (u, id) in zip(users, ids) { quotas[id] = directory.users[u]?.quotaBytes ?? 0 }
            delivery = Delivery(message: message, recipients: ids.map { ($0, "INBOX") }, userQuotas: quotas,
                                cellQuota: cellQuota, internalDate: now)
        }
        let outbound = remote.isEmpty ? nil : OutboundEnvelope(id: message.id, from: "", recipients: remote, received: now, user: nil)
        if delivery == nil && outbound == nil {
            message.discard()
            return loop.makeSucceededVoidFuture()
        }
        let promise = loop.makePromise(of: Result<String, StoreFailure>.self)
        scheduler.submit(.init(delivery: delivery, outbound: outbound, message: message, promise: promise))
        return promise.futureResult.flatMapThrowing { result in
            switch result {
            case .success:
                self.notifyChanged(users)
            case .failure(let f):
                throw f
            }
        }
    }
}
