public func _placeholder() {}
