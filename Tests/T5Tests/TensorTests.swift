import Testing
@testable import T5

@Suite struct TensorTests {
    @Test func copyIsIndependent() {
        let a = Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        let b = a.copy()
        b.pointer[0] = 9
        #expect(a.array[0] == 1)
        #expect(b.array == [9, 2, 3, 4, 5, 6])
        #expect(a.row(1)[0] == 4)
    }
}
