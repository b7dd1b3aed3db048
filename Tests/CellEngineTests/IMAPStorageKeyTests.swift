@testable import CellEngine
import IMAP
import Testing

/// Blob ids travel through IMAP sessions as two integers and come back intact.
struct IMAPStorageKeyTests {
    @Test func blobIdsRoundTrip() {
        for id in ["0660fda9571c38db2a2a", "0", "f", "0123456789abcdef", "0123456789abcdef0", "ffffffffffffffffffffffffffffff", "00000000000000000001"] {
            #expect(IMAPMailboxes.blob(of: IMAPMailboxes.key(ofBlob: id)) == id)
        }
        #expect(IMAPMailboxes.key(ofBlob: "0660fda9571c38db2a2a") != IMAPMailboxes.key(ofBlob: "0660fda9571c38db2a2b"))
        // Leading zeros are kept apart by the digit count.
        #expect(IMAPMailboxes.key(ofBlob: "01") != IMAPMailboxes.key(ofBlob: "1"))
    }

    @Test func idsThatAreNotBlobIdsBecomeTheEmptyId() {
        for bad in ["", "0660FDA9", "../etc/passwd", "g", String(repeating: "a", count: 31)] {
            #expect(IMAPMailboxes.blob(of: IMAPMailboxes.key(ofBlob: bad)) == "")
        }
    }
}
