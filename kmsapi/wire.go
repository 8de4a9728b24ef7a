package kmsapi

import (
	"strconv"
	"time"
)

// The JSON shapes of the AWS KMS API (protocol awsJson1_1, target prefix
// TrentService), member names as in the service model. Blobs are base64
// (encoding/json's []byte), timestamps epoch seconds (epochTime). Inputs
// ignore members they do not know, as AWS does for members newer than
// the server.

// epochTime renders a timestamp as AWS JSON protocols do: seconds since
// the epoch, with milliseconds.
type epochTime time.Time

func (t epochTime) IsZero() bool { return time.Time(t).IsZero() }

func (t epochTime) MarshalJSON() ([]byte, error) {
	ms := time.Time(t).UnixMilli()
	return strconv.AppendFloat(nil, float64(ms)/1000, 'f', 3, 64), nil
}

func epoch(t time.Time) epochTime { return epochTime(t) }

type keyMetadata struct {
	AWSAccountID          string    `json:"AWSAccountId"`
	KeyID                 string    `json:"KeyId"`
	Arn                   string    `json:"Arn"`
	CreationDate          epochTime `json:"CreationDate"`
	Enabled               bool      `json:"Enabled"`
	Description           string    `json:"Description"`
	KeyUsage              string    `json:"KeyUsage"`
	KeyState              string    `json:"KeyState"`
	DeletionDate          epochTime `json:"DeletionDate,omitzero"`
	Origin                string    `json:"Origin"`
	KeyManager            string    `json:"KeyManager"`
	CustomerMasterKeySpec string    `json:"CustomerMasterKeySpec"`
	KeySpec               string    `json:"KeySpec"`
	EncryptionAlgorithms  []string  `json:"EncryptionAlgorithms"`
	MultiRegion           bool      `json:"MultiRegion"`
	CurrentKeyMaterialID  string    `json:"CurrentKeyMaterialId,omitempty"`
	CustomKeyStoreID      string    `json:"CustomKeyStoreId,omitempty"`
}

type tag struct {
	TagKey   string `json:"TagKey"`
	TagValue string `json:"TagValue"`
}

type grantConstraints struct {
	EncryptionContextEquals map[string]string `json:"EncryptionContextEquals,omitempty"`
	EncryptionContextSubset map[string]string `json:"EncryptionContextSubset,omitempty"`
}

type grantListEntry struct {
	KeyID             string            `json:"KeyId"`
	GrantID           string            `json:"GrantId"`
	Name              string            `json:"Name,omitempty"`
	CreationDate      epochTime         `json:"CreationDate"`
	GranteePrincipal  string            `json:"GranteePrincipal"`
	RetiringPrincipal string            `json:"RetiringPrincipal,omitempty"`
	IssuingAccount    string            `json:"IssuingAccount"`
	Operations        []string          `json:"Operations"`
	Constraints       *grantConstraints `json:"Constraints,omitempty"`
}

// Inputs.

type keyIDInput struct {
	KeyID string `json:"KeyId"`
}

type createKeyInput struct {
	Policy                         string `json:"Policy"`
	Description                    string `json:"Description"`
	KeyUsage                       string `json:"KeyUsage"`
	CustomerMasterKeySpec          string `json:"CustomerMasterKeySpec"`
	KeySpec                        string `json:"KeySpec"`
	Origin                         string `json:"Origin"`
	CustomKeyStoreID               string `json:"CustomKeyStoreId"`
	XksKeyID                       string `json:"XksKeyId"`
	BypassPolicyLockoutSafetyCheck bool   `json:"BypassPolicyLockoutSafetyCheck"`
	Tags                           []tag  `json:"Tags"`
	MultiRegion                    bool   `json:"MultiRegion"`
}

type describeKeyInput struct {
	KeyID       string   `json:"KeyId"`
	GrantTokens []string `json:"GrantTokens"`
}

type listInput struct {
	KeyID  string `json:"KeyId"`
	Limit  *int   `json:"Limit"`
	Marker string `json:"Marker"`
}

type aliasInput struct {
	AliasName   string `json:"AliasName"`
	TargetKeyID string `json:"TargetKeyId"`
}

type encryptInput struct {
	KeyID               string            `json:"KeyId"`
	Plaintext           []byte            `json:"Plaintext"`
	EncryptionContext   map[string]string `json:"EncryptionContext"`
	GrantTokens         []string          `json:"GrantTokens"`
	EncryptionAlgorithm string            `json:"EncryptionAlgorithm"`
	DryRun              bool              `json:"DryRun"`
}

type decryptInput struct {
	CiphertextBlob      []byte            `json:"CiphertextBlob"`
	EncryptionContext   map[string]string `json:"EncryptionContext"`
	GrantTokens         []string          `json:"GrantTokens"`
	KeyID               string            `json:"KeyId"`
	EncryptionAlgorithm string            `json:"EncryptionAlgorithm"`
	Recipient           any               `json:"Recipient"`
	DryRun              bool              `json:"DryRun"`
}

type reEncryptInput struct {
	CiphertextBlob                 []byte            `json:"CiphertextBlob"`
	SourceEncryptionContext        map[string]string `json:"SourceEncryptionContext"`
	SourceKeyID                    string            `json:"SourceKeyId"`
	DestinationKeyID               string            `json:"DestinationKeyId"`
	DestinationEncryptionContext   map[string]string `json:"DestinationEncryptionContext"`
	SourceEncryptionAlgorithm      string            `json:"SourceEncryptionAlgorithm"`
	DestinationEncryptionAlgorithm string            `json:"DestinationEncryptionAlgorithm"`
	GrantTokens                    []string          `json:"GrantTokens"`
	DryRun                         bool              `json:"DryRun"`
}

type generateDataKeyInput struct {
	KeyID             string            `json:"KeyId"`
	EncryptionContext map[string]string `json:"EncryptionContext"`
	NumberOfBytes     *int              `json:"NumberOfBytes"`
	KeySpec           string            `json:"KeySpec"`
	GrantTokens       []string          `json:"GrantTokens"`
	Recipient         any               `json:"Recipient"`
	DryRun            bool              `json:"DryRun"`
}

type generateRandomInput struct {
	NumberOfBytes    *int   `json:"NumberOfBytes"`
	CustomKeyStoreID string `json:"CustomKeyStoreId"`
	Recipient        any    `json:"Recipient"`
}

type scheduleDeletionInput struct {
	KeyID               string `json:"KeyId"`
	PendingWindowInDays *int   `json:"PendingWindowInDays"`
}

type enableRotationInput struct {
	KeyID                string `json:"KeyId"`
	RotationPeriodInDays *int   `json:"RotationPeriodInDays"`
}

type listRotationsInput struct {
	KeyID              string `json:"KeyId"`
	IncludeKeyMaterial string `json:"IncludeKeyMaterial"`
	Limit              *int   `json:"Limit"`
	Marker             string `json:"Marker"`
}

type keyPolicyInput struct {
	KeyID                          string  `json:"KeyId"`
	PolicyName                     *string `json:"PolicyName"`
	Policy                         string  `json:"Policy"`
	BypassPolicyLockoutSafetyCheck bool    `json:"BypassPolicyLockoutSafetyCheck"`
}

type createGrantInput struct {
	KeyID             string            `json:"KeyId"`
	GranteePrincipal  string            `json:"GranteePrincipal"`
	RetiringPrincipal string            `json:"RetiringPrincipal"`
	Operations        []string          `json:"Operations"`
	Constraints       *grantConstraints `json:"Constraints"`
	GrantTokens       []string          `json:"GrantTokens"`
	Name              string            `json:"Name"`
	DryRun            bool              `json:"DryRun"`
}

type listGrantsInput struct {
	KeyID            string `json:"KeyId"`
	GrantID          string `json:"GrantId"`
	GranteePrincipal string `json:"GranteePrincipal"`
	Limit            *int   `json:"Limit"`
	Marker           string `json:"Marker"`
}

type listRetirableGrantsInput struct {
	RetiringPrincipal string `json:"RetiringPrincipal"`
	Limit             *int   `json:"Limit"`
	Marker            string `json:"Marker"`
}

type retireGrantInput struct {
	GrantToken string `json:"GrantToken"`
	KeyID      string `json:"KeyId"`
	GrantID    string `json:"GrantId"`
	DryRun     bool   `json:"DryRun"`
}

type tagResourceInput struct {
	KeyID   string   `json:"KeyId"`
	Tags    []tag    `json:"Tags"`
	TagKeys []string `json:"TagKeys"`
}

type updateDescriptionInput struct {
	KeyID       string `json:"KeyId"`
	Description string `json:"Description"`
}

// Outputs.

type empty struct{}

type keyMetadataOutput struct {
	KeyMetadata keyMetadata `json:"KeyMetadata"`
}

type keyListEntry struct {
	KeyID  string `json:"KeyId"`
	KeyArn string `json:"KeyArn"`
}

type listKeysOutput struct {
	Keys       []keyListEntry `json:"Keys"`
	NextMarker string         `json:"NextMarker,omitempty"`
	Truncated  bool           `json:"Truncated"`
}

type aliasListEntry struct {
	AliasName   string `json:"AliasName"`
	AliasArn    string `json:"AliasArn"`
	TargetKeyID string `json:"TargetKeyId,omitempty"`
}

type listAliasesOutput struct {
	Aliases    []aliasListEntry `json:"Aliases"`
	NextMarker string           `json:"NextMarker,omitempty"`
	Truncated  bool             `json:"Truncated"`
}

type encryptOutput struct {
	CiphertextBlob      []byte `json:"CiphertextBlob"`
	KeyID               string `json:"KeyId"`
	EncryptionAlgorithm string `json:"EncryptionAlgorithm"`
}

type decryptOutput struct {
	Plaintext           []byte `json:"Plaintext"`
	KeyID               string `json:"KeyId"`
	EncryptionAlgorithm string `json:"EncryptionAlgorithm"`
	KeyMaterialID       string `json:"KeyMaterialId"`
}

type reEncryptOutput struct {
	CiphertextBlob                 []byte `json:"CiphertextBlob"`
	KeyID                          string `json:"KeyId"`
	SourceKeyID                    string `json:"SourceKeyId"`
	SourceEncryptionAlgorithm      string `json:"SourceEncryptionAlgorithm"`
	DestinationEncryptionAlgorithm string `json:"DestinationEncryptionAlgorithm"`
	SourceKeyMaterialID            string `json:"SourceKeyMaterialId"`
	DestinationKeyMaterialID       string `json:"DestinationKeyMaterialId"`
}

type generateDataKeyOutput struct {
	CiphertextBlob []byte `json:"CiphertextBlob"`
	Plaintext      []byte `json:"Plaintext,omitempty"`
	KeyID          string `json:"KeyId"`
	KeyMaterialID  string `json:"KeyMaterialId"`
}

type generateRandomOutput struct {
	Plaintext []byte `json:"Plaintext"`
}

type scheduleDeletionOutput struct {
	KeyID               string    `json:"KeyId"`
	DeletionDate        epochTime `json:"DeletionDate"`
	KeyState            string    `json:"KeyState"`
	PendingWindowInDays int       `json:"PendingWindowInDays"`
}

type keyIDOutput struct {
	KeyID string `json:"KeyId"`
}

type rotationStatusOutput struct {
	KeyRotationEnabled   bool      `json:"KeyRotationEnabled"`
	KeyID                string    `json:"KeyId"`
	RotationPeriodInDays int       `json:"RotationPeriodInDays,omitempty"`
	NextRotationDate     epochTime `json:"NextRotationDate,omitzero"`
}

type rotationsListEntry struct {
	KeyID            string    `json:"KeyId"`
	KeyMaterialID    string    `json:"KeyMaterialId"`
	KeyMaterialState string    `json:"KeyMaterialState"`
	RotationDate     epochTime `json:"RotationDate,omitzero"`
	RotationType     string    `json:"RotationType,omitempty"`
}

type listRotationsOutput struct {
	Rotations  []rotationsListEntry `json:"Rotations"`
	NextMarker string               `json:"NextMarker,omitempty"`
	Truncated  bool                 `json:"Truncated"`
}

type keyPolicyOutput struct {
	Policy     string `json:"Policy"`
	PolicyName string `json:"PolicyName"`
}

type listPoliciesOutput struct {
	PolicyNames []string `json:"PolicyNames"`
	Truncated   bool     `json:"Truncated"`
}

type createGrantOutput struct {
	GrantID    string `json:"GrantId"`
	GrantToken string `json:"GrantToken"`
}

type listGrantsOutput struct {
	Grants     []grantListEntry `json:"Grants"`
	NextMarker string           `json:"NextMarker,omitempty"`
	Truncated  bool             `json:"Truncated"`
}

type listTagsOutput struct {
	Tags       []tag  `json:"Tags"`
	NextMarker string `json:"NextMarker,omitempty"`
	Truncated  bool   `json:"Truncated"`
}
