import ChorusMPI
import XCTest

/// MPI is started with the thread level a tool uses, and a library that grants less
/// is refused with a message that says what needs it.
final class ThreadLevelTests: XCTestCase {
    func testALowerGrantIsRefusedNamingBothLevelsAndTheReason() throws {
        let message = try XCTUnwrap(ThreadLevel.shortfall(granted: .serialized, required: .multiple,
                                                          because: "the watchdog calls MPI from its own thread"))
        XCTAssertTrue(message.contains("granted MPI_THREAD_SERIALIZED"), message)
        XCTAssertTrue(message.contains("needs MPI_THREAD_MULTIPLE"), message)
        XCTAssertTrue(message.contains("the watchdog calls MPI from its own thread"), message)
    }

    func testAnEqualOrHigherGrantIsAccepted() {
        XCTAssertNil(ThreadLevel.shortfall(granted: .multiple, required: .multiple, because: ""))
        XCTAssertNil(ThreadLevel.shortfall(granted: .multiple, required: .funneled, because: ""))
        XCTAssertTrue(ThreadLevel.single < .funneled && .funneled < .serialized && .serialized < .multiple)
    }
}
