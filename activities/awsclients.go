package activities

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/anyops/anyops/config"
)

// devCredentials sign requests to a plain-http endpoint (cloudsim, moto) when no keys are
// configured: those endpoints accept any key, and the SDK refuses to send unsigned requests.
const devCredentials = "anyops-dev"

// requestTimeout bounds one HTTP request to the cloud; long waits are loops of short calls.
const requestTimeout = 60 * time.Second

// Clients holds the AWS service clients the activities use, all built from one config.AWS so
// that dev (cloudsim), tests (moto, cloudsim) and production (AWS) take the same code path.
type Clients struct {
	// Region is the home region: the one EC2 and SSM talk to.
	Region string
	EC2    *ec2.Client
	SSM    *ssm.Client
	// Route53 switches DNS names (a global service: the region only signs requests).
	Route53 *route53.Client

	cfg        aws.Config
	ec2Options func(*ec2.Options)

	mu       sync.Mutex
	byRegion map[string]*ec2.Client
}

// NewClients builds the clients from c: region, the endpoint when set (BaseEndpoint, for
// cloudsim and moto), static credentials when given, else the SDK's default chain.
//
// The HTTP client is set on each service client's options, never with
// config.WithHTTPClient: with AWS_CA_BUNDLE set (as on our machines) the latter fails with
// "unable to add custom RootCAs". A plain-http endpoint needs no CA bundle at all, so that
// path does not load the shared config (and with it the bundle) in the first place.
func NewClients(ctx context.Context, c config.AWS) (*Clients, error) {
	if c.Region == "" {
		return nil, fmt.Errorf("aws: region is required")
	}
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		return nil, fmt.Errorf("aws: access key id and secret access key must be given together")
	}
	var static aws.CredentialsProvider
	if c.AccessKeyID != "" {
		static = credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, "")
	}

	plainHTTP := false
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("aws: endpoint %q is not an http(s) URL", c.Endpoint)
		}
		plainHTTP = u.Scheme == "http"
	}

	var cfg aws.Config
	var httpClient aws.HTTPClient
	if plainHTTP {
		if static == nil {
			static = credentials.NewStaticCredentialsProvider(devCredentials, devCredentials, "")
		}
		cfg = aws.Config{Region: c.Region, Credentials: static, RetryMaxAttempts: 3}
		httpClient = awshttp.NewBuildableClient().WithTimeout(requestTimeout)
	} else {
		opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(c.Region)}
		if static != nil {
			opts = append(opts, awsconfig.WithCredentialsProvider(static))
		}
		var err error
		cfg, err = awsconfig.LoadDefaultConfig(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("aws: load config: %w", err)
		}
		// LoadDefaultConfig built a BuildableClient that already trusts AWS_CA_BUNDLE; keep it
		// and only add the timeout.
		if b, ok := cfg.HTTPClient.(*awshttp.BuildableClient); ok {
			httpClient = b.WithTimeout(requestTimeout)
		} else {
			httpClient = awshttp.NewBuildableClient().WithTimeout(requestTimeout)
		}
	}

	cl := &Clients{Region: c.Region, cfg: cfg, byRegion: map[string]*ec2.Client{}}
	cl.ec2Options = func(o *ec2.Options) {
		o.HTTPClient = httpClient
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
	}
	cl.EC2 = ec2.NewFromConfig(cfg, cl.ec2Options)
	cl.byRegion[c.Region] = cl.EC2
	cl.SSM = ssm.NewFromConfig(cfg, func(o *ssm.Options) {
		o.HTTPClient = httpClient
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
	})
	cl.Route53 = route53.NewFromConfig(cfg, func(o *route53.Options) {
		o.HTTPClient = httpClient
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
	})
	return cl, nil
}

// EC2For returns an EC2 client for region ("" means the home region), built once and then
// shared. Copying a snapshot to another region is a call made in the destination region.
func (c *Clients) EC2For(region string) *ec2.Client {
	if region == "" || region == c.Region {
		return c.EC2
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.byRegion[region]; ok {
		return cl
	}
	cl := ec2.NewFromConfig(c.cfg, c.ec2Options, func(o *ec2.Options) { o.Region = region })
	c.byRegion[region] = cl
	return cl
}
